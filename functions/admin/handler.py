"""admin: the operators' API (Cognito group ADMIN; API Gateway HTTP API v2 -> Powertools).

Brokers (register, update, routing status with a reason, audited and pushed), learned profiles,
quarantined reports, the audit trail, and a market-data refresh on demand. Every route requires
the ADMIN group: the caller is checked in :func:`screen` before Powertools reads a query or a
body, so a trader learns nothing about the admin API's schema (403), and a request without
claims is a 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.domain.admin import (
    AuditList,
    BrokerAdminView,
    BrokerList,
    BrokerRegistration,
    BrokerUpdate,
    HeldReportView,
    ProfileList,
    QuarantineList,
    StatusChange,
    admin_from_claims,
)
from shared.domain.alarms import AlarmSummary
from shared.domain.broker_links import LinkStatus
from shared.domain.contracts import ADMIN_PREFIX, ApiPath, resolver_path
from shared.domain.errors import DomainError
from shared.domain.market import MarketRefreshRequest, MarketRefreshResult
from shared.domain.models import BROKER_ID_PATTERN, SYMBOL_PATTERN
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
from shared.services.broker_links import TraderConnectionList

if TYPE_CHECKING:
    from shared.wiring import Wiring

JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""Every admin route with one of these methods takes a JSON object body."""
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
MAX_LIST = 500

app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=loads_json)
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
install_error_handlers(app, logger)


def _wiring() -> Wiring:
    from shared.wiring import get_wiring

    return get_wiring()


def _actor() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim
    return admin_from_claims(claims).user_id


_ERRORS: dict[int, str] = {
    400: f"Malformed body: not UTF-8, not JSON, or nested deeper than {MAX_JSON_DEPTH} levels",
    401: 'No or an invalid bearer token (in AWS the JWT authorizer answers `{"message"}`)',
    403: "The token lacks the ADMIN group (a TRADER token included)",
    404: "No such broker",
    405: "Method not allowed on this path; `Allow` lists the methods",
    409: "A broker with this id already exists",
    413: f"Body larger than {MAX_ORDER_BODY_BYTES // 1024} KiB",
    415: "Content-Type is not application/json (UTF-8)",
    422: "The request breaks the schema (a missing reason, an unknown status); `details` names it",
    500: "Internal error (a bug; logged)",
    503: "Postgres (or, for a market refresh, the market-data source; for alarms, CloudWatch) "
    "does not answer; retry after `Retry-After` seconds",
}
_ADMIN = (401, 403, 422, 503)
_JSON_BODY = (400, 413, 415)


def _documented(model: Any, *errors: int, status: int = 200) -> dict[int, OpenAPIResponse]:
    return documented_responses(model, _ERRORS, *errors, status=status)


BrokerId = Annotated[
    str, Path(alias="brokerId", title="Broker Id", pattern=BROKER_ID_PATTERN, max_length=50)
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIST)]


# -- routes ----------------------------------------------------------------------------------


@app.get(
    resolver_path(ApiPath.ADMIN_BROKERS),
    responses=_documented(BrokerList, *_ADMIN),
    security=BEARER,
    tags=["admin"],
)
def handle_list_brokers() -> Response[Any]:
    """Every broker, enabled or not, with its routing status."""
    _actor()
    return json_ok(BrokerList(brokers=tuple(_wiring().admin.list_brokers())))


@app.post(
    resolver_path(ApiPath.ADMIN_BROKERS),
    responses=_documented(BrokerAdminView, *_ADMIN, *_JSON_BODY, 409, status=201),
    security=BEARER,
    tags=["admin"],
)
def handle_register_broker(request: Annotated[BrokerRegistration, Body()]) -> Response[Any]:
    """Register a broker (adapter, fees, webhook auth by secret reference); it starts ACTIVE."""
    view = _wiring().admin.register(request, actor=_actor())
    metrics.add_metric("BrokersRegistered", MetricUnit.Count, 1)
    return json_ok(view, status=201)


@app.patch(
    resolver_path(ApiPath.ADMIN_BROKER),
    responses=_documented(BrokerAdminView, *_ADMIN, *_JSON_BODY, 404),
    security=BEARER,
    tags=["admin"],
)
def handle_update_broker(
    broker_id: BrokerId, request: Annotated[BrokerUpdate, Body()]
) -> Response[Any]:
    """Change a broker's fees, adapter settings or webhook auth; absent fields stay."""
    return json_ok(_wiring().admin.update(broker_id, request, actor=_actor()))


@app.put(
    resolver_path(ApiPath.ADMIN_BROKER_STATUS),
    responses=_documented(BrokerAdminView, *_ADMIN, *_JSON_BODY, 404),
    security=BEARER,
    tags=["admin"],
)
def handle_set_broker_status(
    broker_id: BrokerId, request: Annotated[StatusChange, Body()]
) -> Response[Any]:
    """Set ACTIVE, MAINTENANCE or SUSPENDED with a reason.

    Audited, effective from the next order, pushed to every WebSocket client as
    ``BROKER_STATUS``.
    """
    view = _wiring().admin.set_status(broker_id, request, actor=_actor())
    metrics.add_metric("BrokerStatusChanges", MetricUnit.Count, 1)
    return json_ok(view)


@app.get(
    resolver_path(ApiPath.ADMIN_PROFILES),
    responses=_documented(ProfileList, *_ADMIN),
    security=BEARER,
    tags=["admin"],
)
def handle_list_profiles(
    symbol: Annotated[str | None, Query(pattern=SYMBOL_PATTERN)] = None,
    limit: Limit = 200,
) -> Response[Any]:
    """Learned profiles (of one symbol, or all), with the status routing applies."""
    _actor()
    profiles = _wiring().admin.profiles(symbol=symbol, limit=limit)
    return json_ok(ProfileList(profiles=tuple(profiles)))


@app.get(
    resolver_path(ApiPath.ADMIN_QUARANTINE),
    responses=_documented(QuarantineList, *_ADMIN),
    security=BEARER,
    tags=["admin"],
)
def handle_list_quarantine(
    reason: Annotated[str | None, Query(pattern=r"^[A-Z_]{1,40}$")] = None,
    limit: Limit = 50,
) -> Response[Any]:
    """Quarantined execution reports, newest first (optionally of one reason)."""
    _actor()
    held = _wiring().admin.quarantined(limit=limit, reason=reason)
    reports = tuple(HeldReportView.model_validate(h, from_attributes=True) for h in held)
    return json_ok(QuarantineList(reports=reports))


@app.get(
    resolver_path(ApiPath.ADMIN_AUDIT),
    responses=_documented(AuditList, *_ADMIN),
    security=BEARER,
    tags=["admin"],
)
def handle_list_audit(
    limit: Limit = 100,
    broker_id: Annotated[
        str | None, Query(alias="brokerId", pattern=BROKER_ID_PATTERN, max_length=50)
    ] = None,
) -> Response[Any]:
    """The administrative audit trail, newest first."""
    _actor()
    return json_ok(
        AuditList(entries=tuple(_wiring().admin.audit(limit=limit, broker_id=broker_id)))
    )


@app.get(
    resolver_path(ApiPath.ADMIN_CONNECTIONS),
    responses=_documented(TraderConnectionList, *_ADMIN),
    security=BEARER,
    tags=["admin"],
)
def handle_list_connections(
    limit: Limit = 100,
    broker_id: Annotated[
        str | None, Query(alias="brokerId", pattern=BROKER_ID_PATTERN, max_length=50)
    ] = None,
    status: Annotated[LinkStatus | None, Query()] = None,
) -> Response[Any]:
    """Traders' broker connections (status, expiry, masked account; never a token)."""
    _actor()
    listed = _wiring().broker_links.all_connections(limit=limit, broker_id=broker_id, status=status)
    return Response(status_code=200, content_type="application/json", body=listed.model_dump_json())


@app.post(
    resolver_path(ApiPath.ADMIN_MARKET_REFRESH),
    responses=_documented(MarketRefreshResult, *_ADMIN, *_JSON_BODY),
    security=BEARER,
    tags=["admin"],
)
def handle_refresh_market(request: Annotated[MarketRefreshRequest, Body()]) -> Response[Any]:
    """Run a market-data job now: the instrument master, or the routed symbols' statistics.

    Market data that cannot be fetched is a 503 with its reason (docs/market-data.md).
    """
    logger.info("market refresh requested", job=request.job, actor=_actor())
    report = _wiring().market_refresh.run(request.job)
    return json_ok(MarketRefreshResult.of(request.job, report))


@app.get(
    resolver_path(ApiPath.ADMIN_ALARMS),
    responses=_documented(AlarmSummary, *_ADMIN),
    security=BEARER,
    tags=["admin"],
)
def handle_list_alarms() -> Response[Any]:
    """Every alarm of the stack: state (OK, ALARM, INSUFFICIENT_DATA), reason, what it guards.

    In AWS from CloudWatch (``DescribeAlarms`` on this stack's alarms); in local mode the same
    definitions evaluated on the metrics local mode emitted.
    """
    _actor()
    return json_ok(_wiring().alarm_status.summary())


# -- errors ----------------------------------------------------------------------------------


@app.exception_handler(DomainError)
def handle_domain_error(error: DomainError) -> Response[Any]:
    """Map the services' deliberate errors to HTTP (table in ``shared.http``)."""
    status, body = describe(error)
    if status >= 500:
        logger.warning("request failed", code=error.code, error=str(error))
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def openapi_paths() -> dict[str, Any]:
    """The admin API's OpenAPI document (``functions.route_order.openapi`` merges its paths)."""
    import json

    schema = app.get_openapi_json_schema(
        title="admin",
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
    )
    document: dict[str, Any] = json.loads(schema)
    return document


def screen(event: dict[str, Any]) -> dict[str, Any] | None:
    """The refusal of a request before Powertools reads it, or ``None``.

    A known path asked with another method is a 405; then the caller must be an ADMIN (401,
    403), before the query or the body is looked at; then a JSON body's media type, size,
    encoding, depth and shape are checked (:func:`shared.http.screen_request`).
    """
    return screen_request(
        app,
        event,
        authorize=admin_from_claims,
        guarded=lambda _method, path: path.startswith(f"{ADMIN_PREFIX}/"),
        json_body=lambda method, _path: method in JSON_METHODS,
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
