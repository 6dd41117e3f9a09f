"""The local HTTP server: API Gateway's HTTP API, so the production handlers run unchanged.

* ``/api/v1/...``: each request becomes an HTTP API v2 event (:func:`local.apigw.http_api_event`)
  for ``route_order``, ``admin`` (``/api/v1/admin/...``) or ``broker_webhook``. Trader and admin
  routes are checked first the way the JWT
  authorizer checks them (:class:`~shared.adapters.auth.jwt_verifier.JwtVerifier`): no or a bad
  token answers 401 with API Gateway's ``www-authenticate`` header and the function is not
  invoked; a valid token's claims are injected as the authorizer would. The health route, the
  OpenAPI document and broker webhooks have no authorizer, as in AWS. Bodies over API Gateway's
  10 MB limit answer 413; any other path 404. Every error here has the service's one body shape
  (:class:`shared.http.ErrorBody`), though in AWS the HTTP API answers its own 401, 404 and 413
  as ``{"message": ...}`` and HTTP APIs cannot reshape them (see ``docs/api.md``).
* ``GET /api/v1/docs`` (local mode only): Swagger UI for the OpenAPI document, with the
  JavaScript and CSS that ship inside the Powertools package (no CDN).

The WebSocket management API and EventBridge, which the handlers call back, are not served here
but by the signed internal server (:mod:`local.internal_server`) on a port of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import jwt
from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from functions.route_order.handler import OPENAPI_FILE
from local.apigw import INVOCATION_TIMING, http_api_event
from shared.domain.contracts import (
    ADMIN_PREFIX,
    API_PREFIX,
    TRADER_PREFIX,
    WEBHOOK_PREFIX,
    ApiPath,
)
from shared.domain.errors import AuthenticationError, DomainError, ForbiddenError
from shared.http import API_GATEWAY_MAX_BODY_BYTES, error_body

logger = logging.getLogger("order_router.local.http")

DOCS_PATH = f"{API_PREFIX}/docs"
"""Local mode only: Swagger UI (not a route of the stack)."""
UNAUTHENTICATED_PATHS = frozenset({ApiPath.HEALTH, ApiPath.OPENAPI})

Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]


class TokenVerifier(Protocol):
    """What the authorizer needs (``JwtVerifier``)."""

    def verify(self, token: str | None) -> Any:
        """Raise Authentication/ForbiddenError unless the token is a valid trader token."""
        ...


def build_app(
    *, invoke: Invoke, verifier: TokenVerifier, extra_routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """The Starlette app of the local HTTP server.

    Parameters
    ----------
    invoke
        ``await invoke(function_name, event)`` runs a Lambda handler in a worker thread.
    verifier
        Verifies trader tokens like the API's JWT authorizer.
    extra_routes
        Routes outside ``/api/v1`` matched first (the dashboard: :mod:`local.dashboard`).

    Returns
    -------
    Starlette
        Ready to be served by uvicorn.
    """
    tokens = VerifiedTokens(verifier)

    async def api(request: Request) -> Response:
        started = time.perf_counter()
        INVOCATION_TIMING.set(None)
        response = await _api(request, invoke, tokens)
        _server_timing(response, time.perf_counter() - started)
        logger.info(
            "%s %s -> %d (%.0f ms)",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    async def any_other(scope: Scope, receive: Receive, send: Send) -> None:
        # The router's fallback takes every path and every method (QUERY and custom ones too);
        # the function answers its own 404s and 405s with their Allow header.
        response = await api(Request(scope, receive))
        await response(scope, receive, send)

    app = Starlette(
        routes=list(extra_routes),
        # Whatever Starlette would answer itself gets the one error shape too.
        exception_handlers={HTTPException: _starlette_error},
    )
    app.router.default = any_other
    return app


def _server_timing(response: Response, total_s: float) -> None:
    # Where a request's time went: this front door (authorizer, event, response), waiting for a
    # free container of the function, and the handler itself (docs/capacity.md).
    timing = INVOCATION_TIMING.get()
    if timing is None:
        return
    queue_s, handler_s = timing
    front_s = max(0.0, total_s - queue_s - handler_s)
    response.headers["server-timing"] = ", ".join(
        f"{name};dur={seconds * 1000:.2f}"
        for name, seconds in (("front", front_s), ("queue", queue_s), ("handler", handler_s))
    )


async def _starlette_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "HTTP_ERROR")
    return error_response(status, code, f"{request.method} {request.url.path}: {exc}")


# -- the HTTP API ------------------------------------------------------------------------------


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An answer of the local front door in the service's one error shape."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _authenticated_function(path: str) -> str:
    """The function serving an authenticated ``path`` (admin, broker connections, trader)."""
    if path.startswith(f"{ADMIN_PREFIX}/"):
        return "admin"
    if path == ApiPath.BROKER_CONNECTIONS or path.startswith(f"{ApiPath.BROKER_CONNECTIONS}/"):
        return "broker_connections"
    return "route_order"


async def _api(request: Request, invoke: Invoke, verifier: VerifiedTokens) -> Response:
    path = request.url.path
    claims: dict[str, Any] | None = None
    if path == DOCS_PATH and request.method == "GET":
        return HTMLResponse(swagger_page())
    if path in UNAUTHENTICATED_PATHS:
        function = "route_order"
    elif path.startswith(f"{WEBHOOK_PREFIX}/"):
        function = "broker_webhook"
    elif path.startswith((f"{TRADER_PREFIX}/", f"{ADMIN_PREFIX}/")):
        function = _authenticated_function(path)
        verified = authorize(request.headers.get("authorization"), verifier)
        if isinstance(verified, Response):
            return verified
        claims = verified
    else:
        return error_response(404, "NOT_FOUND", f"no route {path}")
    body = await _bounded_body(request)
    if body is None:
        return error_response(
            413, "PAYLOAD_TOO_LARGE", f"the body exceeds {API_GATEWAY_MAX_BODY_BYTES} bytes"
        )
    event = http_api_event(
        request.method,
        path,
        body=body or None,
        # API Gateway joins repeated headers and query parameters with commas.
        headers={k: ",".join(request.headers.getlist(k)) for k in request.headers},
        query={k: ",".join(request.query_params.getlist(k)) for k in request.query_params} or None,
        claims=claims,
        source_ip=request.client.host if request.client else "127.0.0.1",
    )
    try:
        result = await invoke(function, event)
    except Exception:  # a function that crashed (its own handlers answer every error they see)
        logger.exception("%s failed", function)
        return error_response(500, "INTERNAL", "internal error")
    return lambda_response(result)


async def _bounded_body(request: Request) -> bytes | None:
    # Read at most API Gateway's limit, whatever Content-Length claims; None when over it.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > API_GATEWAY_MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > API_GATEWAY_MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def swagger_page() -> str:
    """Swagger UI for ``/api/v1/openapi.json``, working offline.

    Powertools' ``enable_swagger`` would add the page to the Lambda function too; local mode
    serves it here instead, with the Swagger UI bundle Powertools ships (no CDN).
    """
    assets = Path(swagger_ui.__file__).parent
    return generate_swagger_html(
        spec=OPENAPI_FILE.read_text().replace("</", "<\\/"),
        swagger_js=(assets / "swagger-ui-bundle.min.js").read_text(),
        swagger_css=(assets / "swagger-ui.min.css").read_text(),
        swagger_base_url="",
        oauth2_config=None,
        persist_authorization=True,
    )


VERIFIED_TOKENS_MAX = 10_000
"""Tokens whose verification the front door remembers (the oldest are forgotten first)."""
VERIFIED_TOKEN_TTL_S = 300.0
"""Longest a verification is reused, even for a token valid for hours."""


class VerifiedTokens:
    """Claims of tokens already verified, reused until the token's ``exp``.

    Verifying an HS256 token costs more CPU than anything else this front door does per request
    (PyJWT checks each base64 segment character by character, and the claims were decoded a
    second time); a load of 500 traders sends the same few tokens over and over. A hit needs
    the exact token string verified before, so its signature, issuer and audience were checked;
    the entry lapses at the token's ``exp`` (a lapsed token goes back to the verifier, which
    answers 401 past its leeway) and after :data:`VERIFIED_TOKEN_TTL_S` at the latest. Only
    successes are kept: every refusal is verified again.

    Parameters
    ----------
    verifier
        The verifier consulted on a miss.
    clock
        Seconds since the epoch (``time.time``; tests move it).
    """

    def __init__(self, verifier: TokenVerifier, clock: Callable[[], float] = time.time) -> None:
        self._verifier = verifier
        self._clock = clock
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token`` (raises the verifier's errors).

        A token in neither TRADER nor ADMIN raises ``ForbiddenError`` every time (not cached):
        the caller lets it through to the function, which answers 403.
        """
        now = self._clock()
        entry = self._entries.get(token)
        if entry is not None and now < entry[0]:
            return entry[1]
        self._verifier.verify(token or None)
        # The signature, issuer, audience and expiry were verified above; only the payload is
        # read here.
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        expires = claims.get("exp")
        if isinstance(expires, int | float):
            if len(self._entries) >= VERIFIED_TOKENS_MAX:
                del self._entries[next(iter(self._entries))]
            self._entries[token] = (min(float(expires), now + VERIFIED_TOKEN_TTL_S), claims)
        return claims


def authorize(
    header: str | None, verifier: TokenVerifier | VerifiedTokens
) -> dict[str, Any] | Response:
    """Check a bearer token like the HTTP API JWT authorizer.

    Parameters
    ----------
    header
        The ``Authorization`` header (``Bearer <jwt>``; a bare token is accepted as by AWS).
    verifier
        The token verifier, or the front door's :class:`VerifiedTokens` in front of it.

    Returns
    -------
    dict | Response
        The verified claims, or the 401/503 answer API Gateway would give. A valid token
        without the TRADER group passes (the authorizer checks no groups): the function itself
        answers 403.
    """
    token = (header or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    tokens = verifier if isinstance(verifier, VerifiedTokens) else VerifiedTokens(verifier)
    try:
        return tokens.claims(token)
    except ForbiddenError:
        pass
    except AuthenticationError as exc:
        return _unauthorized(str(exc))
    except DomainError:  # the identity provider is unreachable
        return error_response(503, "DATA_UNAVAILABLE", "the identity provider does not answer")
    # The signature, issuer, audience and expiry were verified above; only the payload is read.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _unauthorized(reason: str) -> Response:
    return error_response(
        401,
        "UNAUTHENTICATED",
        "missing or invalid bearer token",
        headers={"www-authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


def lambda_response(result: Any) -> Response:
    """An HTTP response from a Lambda proxy result (payload 2.0 rules).

    A dict with ``statusCode`` is a full response; anything else is a 200 JSON body, as API
    Gateway treats it.
    """
    if not isinstance(result, Mapping) or "statusCode" not in result:
        return Response(json.dumps(result), status_code=200, media_type="application/json")
    raw = result.get("body") or ""
    content = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ",".join(str(v) for v in values)
    response = Response(content, status_code=int(result["statusCode"]), headers=headers)
    for cookie in result.get("cookies") or []:
        response.raw_headers.append((b"set-cookie", str(cookie).encode()))
    return response
