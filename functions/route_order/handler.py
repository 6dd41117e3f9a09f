"""route_order: the trader API (API Gateway HTTP API v2 -> Powertools resolver).

Each route parses, authorizes from the JWT authorizer's claims, calls one service and maps
domain errors to HTTP answers. The services and their drivers are imported on first use
(``shared.wiring``), so a cold start pays only for the resolver and pydantic.
"""

from __future__ import annotations

import time
import uuid
from functools import cache
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared.domain.analytics import ExecutionAnalytics
from shared.domain.contracts import ApiPath, resolver_path
from shared.domain.errors import DomainError, InvalidRequestError
from shared.domain.history import (
    DEFAULT_PAGE,
    MAX_CURSOR_CHARS,
    MAX_PAGE,
    ORDER_STATUS_PATTERN,
    HistoryQuery,
)
from shared.domain.identity import trader_from_claims
from shared.domain.models import SYMBOL_PATTERN, BrokerProfile
from shared.domain.order_view import OrderView
from shared.http import (
    MAX_JSON_DEPTH,
    MAX_ORDER_BODY_BYTES,
    RETRY_AFTER_S,
    describe,
    documented_responses,
    install_error_handlers,
    json_ok,
    loads_json,
    screen_request,
)
from shared.observability import NAMESPACE, SERVICE, traced
from shared.services.orders import OrderPage
from shared.services.schemas import (
    HealthView,
    OrderRoutingResult,
    RoutingRecommendation,
    SmartOrderRequest,
)

if TYPE_CHECKING:
    from shared.wiring import Wiring

JSON_ROUTES = frozenset({("POST", ApiPath.SMART_ORDER), ("POST", ApiPath.ANALYZE_ORDER)})
"""Routes whose body is a JSON object: read by :func:`shared.http.read_json_object` first."""
OPENAPI_FILE = FilePath(__file__).with_name("openapi.json")
"""The generated document, shipped with the function (``docs/openapi.json`` links to it)."""
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

# Bodies are parsed with Decimal numbers: strict integer fields then refuse 10.0 and 1e3.
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=loads_json)
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
install_error_handlers(app, logger)


def _wiring() -> Wiring:
    from shared.wiring import get_wiring

    return get_wiring()


def _user_id() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim
    return trader_from_claims(claims).user_id


_ERRORS: dict[int, str] = {
    400: f"Malformed body: not UTF-8, not JSON, or nested deeper than {MAX_JSON_DEPTH} levels",
    401: 'No or an invalid bearer token (in AWS the JWT authorizer answers `{"message"}`)',
    403: "The token lacks the TRADER group",
    404: "No such order (or another user's)",
    405: "Method not allowed on this path; `Allow` lists the methods",
    409: "The idempotency key was used with another body, or is still being processed",
    413: f"Body larger than {MAX_ORDER_BODY_BYTES // 1024} KiB",
    415: "Content-Type is not application/json (UTF-8)",
    422: "The request breaks the schema or cannot be routed; `field`/`details` name what",
    500: "Internal error (a bug; logged)",
    503: "Postgres does not answer; retry after `Retry-After` seconds",
}


def _documented(model: Any, *errors: int) -> dict[int, OpenAPIResponse]:
    return documented_responses(model, _ERRORS, *errors)


_TRADER = (401, 403, 422, 503)
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$"
"""``since``/``until``: an ISO 8601 timestamp with its zone (a bare number is not a time)."""
_JSON_BODY = (400, 413, 415)


def _respond(status: int, body: dict[str, Any]) -> Response[Any]:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


# -- routes ----------------------------------------------------------------------------------


@app.post(
    resolver_path(ApiPath.SMART_ORDER),
    responses=_documented(OrderRoutingResult, *_TRADER, *_JSON_BODY, 409),
    security=BEARER,
)
def handle_post_smart_order(
    request: Annotated[SmartOrderRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", max_length=64)] = None,
) -> Response[Any]:
    """Route AND execute an order; the same ``clientOrderId`` again returns the first answer."""
    user_id = _user_id()
    started = time.perf_counter()
    outcome = _wiring().routing.submit(
        request, user_id=user_id, key=request.client_order_id or idempotency_key
    )
    result: OrderRoutingResult = outcome.result
    logger.set_correlation_id(result.order_id)
    if not result.replayed:
        metrics.add_metric("RoutingLatency", MetricUnit.Milliseconds, outcome.decision_ms)
        metrics.add_metric("OrderLatency", MetricUnit.Milliseconds, _ms_since(started))
        metrics.add_metric("BrokerRejects", MetricUnit.Count, outcome.rejects)
        metrics.add_metric("OrdersCascaded", MetricUnit.Count, outcome.cascades)
        _count_decision(result.strategy.value)
    logger.info("order routed", status=result.status, replayed=result.replayed)
    return json_ok(result)


@app.post(
    resolver_path(ApiPath.ANALYZE_ORDER),
    responses=_documented(RoutingRecommendation, *_TRADER, *_JSON_BODY),
    security=BEARER,
)
def handle_post_analyze_order(
    request: Annotated[SmartOrderRequest, Body()],
) -> Response[Any]:
    """The routing decision for an order, without placing anything."""
    user_id = _user_id()
    started = time.perf_counter()
    order = request.to_order(
        order_id=f"analysis-{uuid.uuid4().hex}", user_id=user_id, client_order_id=None
    )
    recommendation: RoutingRecommendation = _wiring().routing.analyze(order)
    metrics.add_metric("RoutingLatency", MetricUnit.Milliseconds, _ms_since(started))
    return json_ok(recommendation)


@app.get(
    resolver_path(ApiPath.ORDER),
    responses=_documented(OrderView, *_TRADER, 404),
    security=BEARER,
)
def handle_get_order(
    order_id: Annotated[str, Path(alias="orderId", title="Order Id", min_length=1, max_length=50)],
) -> Response[Any]:
    """Decision, allocations, child orders and executions of one of the caller's orders."""
    return json_ok(_wiring().order_queries.order_view(_user_id(), order_id))


@app.get(
    resolver_path(ApiPath.ORDERS),
    responses=_documented(OrderPage, *_TRADER),
    security=BEARER,
)
def handle_list_orders(
    *,
    status: Annotated[str | None, Query(pattern=ORDER_STATUS_PATTERN)] = None,
    symbol: Annotated[str | None, Query(pattern=SYMBOL_PATTERN)] = None,
    since: Annotated[
        str | None, Query(pattern=ISO_TIMESTAMP, description="ISO 8601 with zone; inclusive")
    ] = None,
    until: Annotated[
        str | None, Query(pattern=ISO_TIMESTAMP, description="ISO 8601 with zone; exclusive")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> Response[Any]:
    """The caller's orders, newest first, filtered, in pages linked by an opaque cursor."""
    user_id = _user_id()
    try:
        query = HistoryQuery.model_validate(
            {"status": status, "symbol": symbol, "since": since, "until": until, "limit": limit}
        )
    except ValidationError as exc:  # a timestamp without its zone
        raise InvalidRequestError(
            "since", "since and until must be ISO 8601 timestamps with a zone, in range"
        ) from exc
    return json_ok(_wiring().order_queries.history(user_id, query, cursor))


@app.get(
    resolver_path(ApiPath.EXECUTION_ANALYTICS),
    responses=_documented(ExecutionAnalytics, *_TRADER),
    security=BEARER,
)
def handle_get_execution_analytics(
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> Response[Any]:
    """The caller's execution analytics over the last ``days`` days."""
    analytics: ExecutionAnalytics = _wiring().analytics.execution_analytics(_user_id(), days)
    return json_ok(analytics)


@app.get(
    resolver_path(ApiPath.BROKER_PROFILES),
    responses=_documented(list[BrokerProfile], *_TRADER),
    security=BEARER,
)
def handle_get_broker_profiles(
    symbol: Annotated[str, Query(pattern=SYMBOL_PATTERN)],
) -> list[BrokerProfile]:
    """Current execution profiles of every enabled broker for ``symbol``."""
    _user_id()
    profiles: list[BrokerProfile] = _wiring().profiles.profiles_for(symbol)
    return profiles


@app.get(resolver_path(ApiPath.HEALTH), responses=_documented(HealthView, 503))
def handle_get_health() -> Response[Any]:
    """Dependencies' state; 503 when Postgres does not answer (Redis down is only degraded)."""
    dependencies: dict[str, bool] = _wiring().health()
    health = HealthView.of(postgres=dependencies["postgres"], redis=dependencies["redis"])
    status = 503 if health.status == "down" else 200
    return Response(
        status_code=status,
        content_type="application/json",
        body=health.model_dump_json(),
        headers={"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None,
    )


@app.get(
    resolver_path(ApiPath.OPENAPI),
    responses={
        200: {"description": "This API's OpenAPI 3.1 document", "content": {"application/json": {}}}
    },
)
def handle_get_openapi() -> Response[Any]:
    """The OpenAPI document of the service (no authentication)."""
    return Response(status_code=200, content_type="application/json", body=_openapi_text())


@cache
def _openapi_text() -> str:
    return OPENAPI_FILE.read_text()


# -- errors ----------------------------------------------------------------------------------


@app.exception_handler(DomainError)
def handle_domain_error(error: DomainError) -> Response[Any]:
    """Map the services' deliberate errors to HTTP (table in ``shared.http``)."""
    status, body = describe(error)
    if status >= 500:
        logger.warning("request failed", code=error.code, error=str(error))
    return _respond(status, body)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _count_decision(strategy: str) -> None:
    # RoutingDecisions carries the strategy as a dimension; a metric of its own keeps that
    # dimension off the invocation's other metrics.
    with single_metric(
        name="RoutingDecisions",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name="strategy", value=strategy)


def openapi_document() -> str:
    """The trader API's OpenAPI 3.1 document.

    ``functions.route_order.openapi`` adds the broker webhooks and writes the file served.
    """
    return app.get_openapi_json_schema(
        title="Order router API",
        version="1.0.0",
        description=(
            "Intelligent order routing: smart orders, analysis, analytics, profiles, health, and "
            "the broker webhooks. Every error answers `ErrorBody`."
        ),
        security_schemes={
            "bearerAuth": HTTPBearer(
                bearerFormat="JWT",
                description="Cognito ID token (local mode: `order-router token`)",
            )
        },
    )


def screen(event: dict[str, Any]) -> dict[str, Any] | None:
    """The refusal of a JSON route's request before Powertools reads it, or ``None``.

    A 405 first; then, on a JSON route, the trader's token (a caller without one learns nothing
    about bodies) and :func:`shared.http.read_json_object`'s checks
    (:func:`shared.http.screen_request`).
    """

    def json_route(method: str, path: str) -> bool:
        return (method, path) in JSON_ROUTES

    return screen_request(
        app, event, authorize=trader_from_claims, guarded=json_route, json_body=json_route
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    rejected = screen(event)
    if rejected is not None:
        logger.info("request refused", status=rejected["statusCode"])
        return rejected
    return app.resolve(event, context)
