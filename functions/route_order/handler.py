"""route_order: the trader API (API Gateway HTTP API v2 -> Powertools resolver).

Each route parses, authorizes from the JWT authorizer's claims, calls one service and maps
domain errors to HTTP answers. The services and their drivers are imported on first use
(``shared.wiring``), so a cold start pays only for the resolver and pydantic.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from shared.domain.analytics import ExecutionAnalytics
from shared.domain.errors import DomainError, NotFoundError
from shared.domain.identity import trader_from_claims
from shared.domain.models import SYMBOL_PATTERN, BrokerProfile
from shared.http import RETRY_AFTER_S, describe, error_body
from shared.observability import NAMESPACE, SERVICE, traced
from shared.services.schemas import OrderRoutingResult, RoutingRecommendation, SmartOrderRequest

PREFIX = "/api/v1/trading/intelligent"

app = APIGatewayHttpResolver(enable_validation=True)
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def _wiring() -> Any:
    from shared.wiring import get_wiring

    return get_wiring()


def _user_id() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim
    return trader_from_claims(claims).user_id


def _documented(model: Any) -> dict[int, OpenAPIResponse]:
    # OpenAPI documents the model; at run time the already validated model is serialised once
    # by pydantic instead of being validated again and walked by jsonable_encoder.
    return {200: {"description": "OK", "content": {"application/json": {"model": model}}}}


def _ok(model: BaseModel) -> Response[Any]:
    return Response(
        status_code=200,
        content_type="application/json",
        body=model.model_dump_json(by_alias=True),
    )


def _respond(status: int, body: dict[str, Any]) -> Response[Any]:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


# -- routes ----------------------------------------------------------------------------------


@app.post(f"{PREFIX}/orders/smart", responses=_documented(OrderRoutingResult))
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
    return _ok(result)


@app.post(f"{PREFIX}/orders/analyze", responses=_documented(RoutingRecommendation))
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
    return _ok(recommendation)


@app.get(f"{PREFIX}/orders/<order_id>")
def handle_get_order(
    order_id: Annotated[str, Path(min_length=1, max_length=50)],
) -> dict[str, Any]:
    """Decision, allocations, child orders and executions of one of the caller's orders."""
    view: dict[str, Any] | None = _wiring().orders.get_order_view(_user_id(), order_id)
    if view is None:
        raise NotFoundError(f"order {order_id} not found")
    return view


@app.get(f"{PREFIX}/analytics/execution", responses=_documented(ExecutionAnalytics))
def handle_get_execution_analytics(
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> Response[Any]:
    """The caller's execution analytics over the last ``days`` days."""
    analytics: ExecutionAnalytics = _wiring().analytics.execution_analytics(_user_id(), days)
    return _ok(analytics)


@app.get(f"{PREFIX}/brokers/profiles")
def handle_get_broker_profiles(
    symbol: Annotated[str, Query(pattern=SYMBOL_PATTERN)],
) -> list[BrokerProfile]:
    """Current execution profiles of every enabled broker for ``symbol``."""
    _user_id()
    profiles: list[BrokerProfile] = _wiring().profiles.profiles_for(symbol)
    return profiles


@app.get("/api/v1/health")
def handle_get_health() -> Response[dict[str, Any]]:
    """Dependencies' state; 503 when Postgres does not answer (Redis down is only degraded)."""
    dependencies: dict[str, bool] = _wiring().health()
    postgres, redis_ok = dependencies["postgres"], dependencies["redis"]
    status = "ok" if postgres and redis_ok else "degraded" if postgres else "down"
    body = {
        "status": status,
        "dependencies": {
            "postgres": "up" if postgres else "down",
            "redis": "up" if redis_ok else "down",
        },
    }
    return Response(
        status_code=200 if postgres else 503, content_type="application/json", body=body
    )


# -- errors ----------------------------------------------------------------------------------


@app.exception_handler(RequestValidationError)
def handle_request_validation(error: RequestValidationError) -> Response[Any]:
    """Malformed JSON is a 400; a well-formed body that breaks the schema a 422 naming fields."""
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _respond(400, error_body("MALFORMED_JSON", "the request body is not valid JSON"))
    details = [
        {"field": _field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]
    return _respond(
        422,
        error_body("VALIDATION_FAILED", "the request does not match the schema", details=details),
    )


@app.exception_handler(DomainError)
def handle_domain_error(error: DomainError) -> Response[Any]:
    """Map the services' deliberate errors to HTTP (table in ``shared.http``)."""
    status, body = describe(error)
    if status >= 500:
        logger.warning("request failed", code=error.code, error=str(error))
    return _respond(status, body)


def _field(loc: Any) -> str:
    # Drop the "body"/"query" prefix Powertools adds; the client knows its own field names.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


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
    """The API's OpenAPI 3.1 document (committed as ``docs/openapi.json``)."""
    return app.get_openapi_json_schema(
        title="Order router API",
        version="1.0.0",
        description="Intelligent order routing: smart orders, analysis, analytics, profiles.",
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
