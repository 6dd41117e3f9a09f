"""The local HTTP server: API Gateway's HTTP API, so the production handlers run unchanged.

* ``/api/v1/...``: each request becomes an HTTP API v2 event (:func:`local.apigw.http_api_event`)
  for ``route_order`` or ``broker_webhook``. Trader routes are checked first the way the JWT
  authorizer checks them (:class:`~shared.adapters.auth.jwt_verifier.JwtVerifier`): no or a bad
  token answers 401 ``{"message": "Unauthorized"}`` like API Gateway and the function is not
  invoked; a valid token's claims are injected as the authorizer would. The health route and
  broker webhooks have no authorizer, as in AWS. Anything else is a 404.

The WebSocket management API and EventBridge, which the handlers call back, are not served here
but by the signed internal server (:mod:`local.internal_server`) on a port of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.apigw import http_api_event
from shared.domain.errors import AuthenticationError, DomainError, ForbiddenError

logger = logging.getLogger("order_router.local.http")

HEALTH_PATH = "/api/v1/health"
TRADER_PREFIX = "/api/v1/trading/intelligent/"
WEBHOOK_PREFIX = "/api/v1/webhooks/"

Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]


class TokenVerifier(Protocol):
    """What the authorizer needs (``JwtVerifier``)."""

    def verify(self, token: str | None) -> Any:
        """Raise Authentication/ForbiddenError unless the token is a valid trader token."""
        ...


def build_app(*, invoke: Invoke, verifier: TokenVerifier) -> Starlette:
    """The Starlette app of the local HTTP server.

    Parameters
    ----------
    invoke
        ``await invoke(function_name, event)`` runs a Lambda handler in a worker thread.
    verifier
        Verifies trader tokens like the API's JWT authorizer.

    Returns
    -------
    Starlette
        Ready to be served by uvicorn.
    """

    async def api(request: Request) -> Response:
        started = time.perf_counter()
        response = await _api(request, invoke, verifier)
        logger.info(
            "%s %s -> %d (%.0f ms)",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    return Starlette(
        routes=[
            Route(
                "/{path:path}",
                api,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
            ),
        ]
    )


# -- the HTTP API ------------------------------------------------------------------------------


async def _api(request: Request, invoke: Invoke, verifier: TokenVerifier) -> Response:
    path = request.url.path
    claims: dict[str, Any] | None = None
    if path == HEALTH_PATH:
        function = "route_order"
    elif path.startswith(WEBHOOK_PREFIX):
        function = "broker_webhook"
    elif path.startswith(TRADER_PREFIX):
        function = "route_order"
        verified = authorize(request.headers.get("authorization"), verifier)
        if isinstance(verified, Response):
            return verified
        claims = verified
    else:
        return JSONResponse({"message": "Not Found"}, status_code=404)
    body = await request.body()
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
    except Exception:  # an unhandled error in a function is API Gateway's bare 500
        logger.exception("%s failed", function)
        return JSONResponse({"message": "Internal Server Error"}, status_code=500)
    return lambda_response(result)


def authorize(header: str | None, verifier: TokenVerifier) -> dict[str, Any] | Response:
    """Check a bearer token like the HTTP API JWT authorizer.

    Parameters
    ----------
    header
        The ``Authorization`` header (``Bearer <jwt>``; a bare token is accepted as by AWS).
    verifier
        The token verifier.

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
    try:
        verifier.verify(token or None)
    except ForbiddenError:
        pass
    except AuthenticationError as exc:
        return _unauthorized(str(exc))
    except DomainError:  # the identity provider is unreachable
        return JSONResponse({"message": "Service Unavailable"}, status_code=503)
    # The signature, issuer, audience and expiry were verified above; only the payload is read.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _unauthorized(reason: str) -> Response:
    return JSONResponse(
        {"message": "Unauthorized"},
        status_code=401,
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
