"""How the HTTP handlers answer: one status table, one error body shape, one body reader.

Every error body is ``{"error": {"code": "...", "message": "...", ...}}`` (:class:`ErrorBody`) so
clients branch on ``code``; 503 answers carry ``Retry-After``. :func:`read_json_object` is the one
way a JSON route reads its body: media type, size, encoding, nesting depth and shape are checked
before anything is parsed into a model, so hostile bytes end as a 4xx, never as a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.domain.errors import (
    AuthenticationError,
    ConflictError,
    DataUnavailableError,
    DomainError,
    ForbiddenError,
    InvalidExecutionReportError,
    InvalidLinkError,
    InvalidOrderError,
    InvalidRequestError,
    LinkRefusedError,
    MalformedPayloadError,
    MarketDataUnavailableError,
    NoEligibleBrokerError,
    NotFoundError,
    RiskRejectedError,
)

STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (NoEligibleBrokerError, 422),
    (InvalidOrderError, 422),
    (RiskRejectedError, 422),
    (InvalidExecutionReportError, 400),
    (MalformedPayloadError, 400),
    (DataUnavailableError, 503),
    (InvalidRequestError, 422),
    (InvalidLinkError, 400),
    (LinkRefusedError, 422),
    (MarketDataUnavailableError, 503),
)

RETRY_AFTER_S = 5

JSON_MEDIA_TYPE = "application/json"
MAX_JSON_DEPTH = 32
"""Deepest nesting of objects and arrays a JSON body may have (an order needs 2)."""
MAX_ORDER_BODY_BYTES = 16 * 1024
"""Largest body of an order route: a full order is under 1 KiB; API Gateway allows 10 MB."""
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit (HTTP APIs answer 413 above it before any function runs)."""


class ErrorDetail(BaseModel):
    """One schema violation of a 422 ``VALIDATION_FAILED`` answer."""

    field: str = Field(description="dotted path of the field in the request, e.g. `quote.bid`")
    message: str
    type: str | None = Field(default=None, description="pydantic's error type")


class ErrorInfo(BaseModel):
    """What went wrong: ``code`` is stable, ``message`` is for people."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(examples=["VALIDATION_FAILED"])
    message: str
    field: str | None = Field(default=None, description="the offending field (camelCase)")
    details: list[ErrorDetail] | None = None
    reasons: dict[str, str] | None = Field(
        default=None, description="NO_ELIGIBLE_BROKER: every broker's reason, by broker id"
    )
    allow: list[str] | None = Field(default=None, description="405: the methods the path allows")


class ErrorBody(BaseModel):
    """The one body of every error answer (4xx and 5xx) of the service's HTTP API."""

    error: ErrorInfo


class RejectedRequestError(Exception):
    """A request refused before it reaches a model: bad media type, size, bytes or JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The error body of this refusal."""
        return error_body(self.code, self.message, **self.extra)

    def proxy_result(self) -> dict[str, Any]:
        """The refusal as a Lambda proxy (payload 2.0) result."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": JSON_MEDIA_TYPE, **self.headers},
            "body": json.dumps(self.body()),
            "isBase64Encoded": False,
        }


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": {"code": code, "message": message, **extra}}


def status_of(error: DomainError) -> int:
    """HTTP status of a domain error (500 for one no table row covers: a bug)."""
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(error, kind)), 500)


def describe(error: DomainError) -> tuple[int, dict[str, Any]]:
    """Status and body of a domain error, with the fields each kind carries."""
    status = status_of(error)
    extra: dict[str, Any] = {}
    message = str(error)
    if isinstance(error, NoEligibleBrokerError):
        extra["reasons"] = error.reasons
    elif isinstance(error, InvalidOrderError):
        extra["field"] = error.field
        message = error.message
    elif isinstance(error, RiskRejectedError):
        extra.update(rule=error.rule, field=error.field)
        message = error.message
    elif isinstance(error, InvalidLinkError):
        extra["field"] = error.field
        message = error.message
    elif isinstance(error, InvalidExecutionReportError | MalformedPayloadError):
        extra["field"] = error.field
        message = error.reason
    field = getattr(error, "field", None)
    if field is not None and "field" not in extra:
        extra["field"] = field
    if status == 503 and not isinstance(error, MarketDataUnavailableError):
        # A market-data refusal says why (an expired platform token, Kite down): only admins
        # trigger one, and the reason is what they act on; a database's stays private.
        message = "the service is temporarily unavailable; retry shortly"
    if status == 500:
        message = "internal error"
    return status, error_body(error.code, message, **extra)


# -- reading a JSON body -------------------------------------------------------------------------


def unsupported_media_type(content_type: str | None) -> RejectedRequestError | None:
    """The 415 for a ``Content-Type`` other than ``application/json`` (UTF-8), else ``None``."""
    media, _, params = (content_type or "").partition(";")
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (p.partition("=") for p in params.split(";"))
            if name.strip().lower() == "charset"
        ),
        "utf-8",
    )
    if media.strip().lower() == JSON_MEDIA_TYPE and charset in ("utf-8", "utf8"):
        return None
    return RejectedRequestError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f"send the body as {JSON_MEDIA_TYPE} (UTF-8); got {content_type or 'no Content-Type'}",
        field="Content-Type",
    )


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The body bytes of an API Gateway proxy event (base64 undone).

    Raises
    ------
    RejectedRequestError
        400 when a body flagged as base64 is not base64 (API Gateway never sends that).
    """
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8", errors="surrogatepass")
    try:
        return base64.b64decode(str(body), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RejectedRequestError(400, "MALFORMED_BODY", "the body is not valid base64") from exc


def nesting_exceeds(text: str, limit: int) -> bool:
    """True when the JSON ``text`` nests objects/arrays deeper than ``limit``.

    A linear scan without recursion (brackets inside strings do not count), run before
    ``json.loads``, whose C scanner recurses once per level and raises ``RecursionError`` on
    deep input. Neither the standard library nor pydantic bounds depth, hence this loop.
    """
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


_JSON_KINDS: dict[type, str] = {list: "an array", str: "a string", bool: "a boolean"}
_JSON_KINDS[type(None)] = "null"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(text: str | bytes) -> Any:
    """Parse JSON the way the API reads bodies.

    Numbers with a fraction or exponent become ``Decimal`` (so ``10.0`` and ``1e3`` are not
    integers, and prices keep their digits); ``NaN`` and ``Infinity`` are refused.
    """
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)


def read_json_object(
    body: bytes,
    content_type: str | None,
    *,
    max_bytes: int = MAX_ORDER_BODY_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> dict[str, Any]:
    """Check and parse the body of a JSON route, cheapest check first.

    Parameters
    ----------
    body
        The raw body.
    content_type
        The ``Content-Type`` header.
    max_bytes, max_depth
        Size and nesting bounds.

    Returns
    -------
    dict
        The JSON object (numbers with a fraction as ``Decimal``).

    Raises
    ------
    RejectedRequestError
        415 media type; 413 too large; 400 not UTF-8, nested too deep or not JSON; 422 valid
        JSON that is not an object (an array of orders is refused whole, never partly placed).
    """
    unsupported = unsupported_media_type(content_type)
    if unsupported is not None:
        raise unsupported
    if len(body) > max_bytes:
        raise RejectedRequestError(
            413, "PAYLOAD_TOO_LARGE", f"the body exceeds {max_bytes} bytes", limit=max_bytes
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedRequestError(
            400, "MALFORMED_BODY", f"the body is not UTF-8 (byte {exc.start})"
        ) from exc
    if nesting_exceeds(text, max_depth):
        raise RejectedRequestError(
            400, "BODY_TOO_DEEP", f"JSON nests deeper than {max_depth} levels", limit=max_depth
        )
    try:
        value = loads_json(text)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer of > 4300 digits
        raise RejectedRequestError(
            400, "MALFORMED_JSON", "the request body is not valid JSON"
        ) from exc
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), "a number")
        raise RejectedRequestError(
            422,
            "VALIDATION_FAILED",
            "the request body must be one JSON object",
            details=[
                {
                    "field": "body",
                    "message": f"expected a JSON object, got {kind}",
                    "type": "model_type",
                }
            ],
        )
    return value


# -- the resolvers' own errors -------------------------------------------------------------------


def install_error_handlers(app: APIGatewayHttpResolver, logger: Logger) -> None:
    """Make every answer of a Powertools resolver that is not a route's own use :class:`ErrorBody`.

    Covers schema violations (422, or 400 for malformed JSON), Powertools' media-type refusal
    (415), unknown paths (404), known paths with another method (405 with ``Allow``), Powertools'
    HTTP errors, and, as a safety net, any unexpected exception (500, logged). Without these
    Powertools answers ``{"statusCode", "message"}``, ``{"statusCode", "detail"}`` or 404 for a
    wrong method. Handlers a function registers for its own errors (``DomainError``) take
    precedence: Powertools picks the most specific class.
    """

    def respond(
        status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Response[Any]:
        return Response(
            status_code=status, content_type=JSON_MEDIA_TYPE, body=body, headers=headers
        )

    def handle_request_validation(error: RequestValidationError) -> Response[Any]:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return respond(400, error_body("MALFORMED_JSON", "the request body is not valid JSON"))
        details = [
            {"field": _field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
            for e in errors
        ]
        message = "the request does not match the schema"
        return respond(422, error_body("VALIDATION_FAILED", message, details=details))

    def handle_unsupported_content(error: RequestUnsupportedContentType) -> Response[Any]:
        body = error_body("UNSUPPORTED_MEDIA_TYPE", str(error), field="Content-Type")
        return respond(415, body)

    def handle_not_found(error: RouteNotFound) -> Response[Any]:
        event = app.current_event
        refused = method_not_allowed(app, event.http_method, event.path)
        if refused is None:
            return respond(404, error_body("NOT_FOUND", f"no route {event.path}"))
        return respond(refused.status, refused.body(), refused.headers)

    def handle_service_error(error: ServiceError) -> Response[Any]:
        return respond(error.status_code, error_body("HTTP_ERROR", str(error.msg)))

    def handle_unexpected(error: Exception) -> Response[Any]:
        logger.exception("unhandled error", error_type=type(error).__name__)
        return respond(500, error_body("INTERNAL", "internal error"))

    app.exception_handler(RequestValidationError)(handle_request_validation)
    app.exception_handler(RequestUnsupportedContentType)(handle_unsupported_content)
    app.exception_handler(ServiceError)(handle_service_error)
    app.exception_handler(Exception)(handle_unexpected)
    app.not_found(handle_not_found)


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods ``app`` serves on ``path``; a static path shadows the dynamic ones.

    ``/orders/smart`` is a static POST route, and also matches ``GET /orders/{orderId}``; the
    API treats it as the static route only, so ``GET /orders/smart`` is a 405, not an order
    called "smart".
    """
    # Powertools keeps no public route table; its compiled routes are the one source of truth
    # (tests/handlers/test_hostile_input.py fails if a Powertools release renames them).
    static = {route.method for route in app._static_routes if route.rule.match(path)}
    if static:
        return sorted(static)
    return sorted({route.method for route in app._dynamic_routes if route.rule.match(path)})


def method_not_allowed(
    app: APIGatewayHttpResolver, method: str, path: str
) -> RejectedRequestError | None:
    """The 405 for ``method`` on ``path`` when the path exists without it, else ``None``."""
    allowed = allowed_methods(app, path)
    if not allowed or method.upper() in allowed:
        return None
    return RejectedRequestError(
        405,
        "METHOD_NOT_ALLOWED",
        f"{method.upper()} is not allowed on {path}",
        headers={"Allow": ", ".join(allowed)},
        allow=allowed,
    )


def documented_responses(
    model: Any, descriptions: Mapping[int, str], *errors: int, status: int = 200
) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI ``responses``: ``model`` on success, :class:`ErrorBody` on each error.

    Every route can answer 405 and 500; a 503 carries ``Retry-After``. ``descriptions`` is the
    function's own wording of each status.
    """
    responses: dict[int, OpenAPIResponse] = {
        status: {"description": "OK", "content": {"application/json": {"model": model}}}
    }
    for code in sorted({*errors, 405, 500}):
        response: OpenAPIResponse = {
            "description": descriptions[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
        if code == 503:
            response["headers"] = {
                "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
            }
        responses[code] = response
    return responses


def json_ok(model: BaseModel, status: int = 200) -> Response[Any]:
    """``model`` as the answer, serialised once by pydantic (by alias), not re-validated."""
    return Response(
        status_code=status,
        content_type="application/json",
        body=model.model_dump_json(by_alias=True),
    )


def screen_request(
    app: APIGatewayHttpResolver,
    event: Mapping[str, Any],
    *,
    authorize: Callable[[Any], object],
    guarded: Callable[[str, str], bool],
    json_body: Callable[[str, str], bool],
) -> dict[str, Any] | None:
    """The refusal of a request before Powertools reads it (a proxy result), or ``None``.

    A known path asked with another method is a 405 first. Then, for a request ``guarded``
    (method, path) selects, ``authorize`` reads the JWT claims (a domain error: 401/403), so a
    caller without the right group learns nothing about bodies; then, where ``json_body``
    (method, path) says the route takes one, :func:`read_json_object` checks its media type,
    size, encoding, depth and shape.
    """
    context = event.get("requestContext") or {}
    method = str((context.get("http") or {}).get("method", "")).upper()
    path = str(event.get("rawPath") or "")
    refused = method_not_allowed(app, method, path)
    if refused is not None:  # before Powertools, which would try the dynamic routes
        return refused.proxy_result()
    if not guarded(method, path):
        return None
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims")
    try:
        authorize(claims)
        if json_body(method, path):
            headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
            read_json_object(raw_body(event), headers.get("content-type"))
    except DomainError as error:
        status, body = describe(error)
        return RejectedRequestError(status, error.code, body["error"]["message"]).proxy_result()
    except RejectedRequestError as rejected:
        return rejected.proxy_result()
    return None


def _field(loc: Any) -> str:
    # Drop the "body"/"query" prefix Powertools adds; the client knows its own field names.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)
