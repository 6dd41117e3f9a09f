"""The contracts between processes: event JSON on the wire, typed payloads, route templates."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.domain.contracts import (
    EVENT_SCHEMA_VERSION,
    PAYLOADS,
    ApiPath,
    ChildOrderPlacedPayload,
    DetailType,
    DomainEvent,
    EventSource,
    ExecutionReportedPayload,
    MessageType,
    OrderRoutedPayload,
    UnknownDetailTypeError,
    execution_reported_event,
    order_routed_event,
    read_payload,
    resolver_path,
)
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.orders import ChildOrderStatus
from shared.domain.settlement import child_placed_event
from tests import factories


def _report() -> ExecutionReport:
    request = factories.order(quantity=100)
    [kid] = factories.children(request, factories.decision(request))
    return ExecutionReport(
        broker_id=kid.broker_id,
        broker_order_id="Z-1",
        child_order_id=kid.child_order_id,
        status=ExecutionStatus.PARTIALLY_FILLED,
        quantity=100,
        filled_quantity=40,
        average_price=Decimal("2950.55"),
        symbol=kid.symbol,
        exchange=kid.exchange,
        side=kid.side,
        event_time=factories.NOW + timedelta(milliseconds=120),
    )


def _events() -> list[DomainEvent]:
    request = factories.order(quantity=300)
    routing = factories.decision(request, {"zerodha": 200, "upstox": 100})
    kid = factories.children(request, routing)[0].model_copy(
        update={"status": ChildOrderStatus.PLACED, "placed_at": factories.NOW}
    )
    return [
        order_routed_event(request, routing, uuid.uuid4()),
        child_placed_event(kid, uuid.uuid4()),
        execution_reported_event(request.order_id, request.user_id, _report(), uuid.uuid4()),
    ]


def test_order_routed_detail_is_the_json_consumers_read() -> None:
    # GIVEN an order split 200/100 over two brokers
    request = factories.order(quantity=300)
    routing = factories.decision(request, {"zerodha": 200, "upstox": 100})
    # WHEN its OrderRouted event is built
    event = order_routed_event(request, routing, uuid.uuid4())
    # THEN the wire keeps its shape: snake_case envelope first, camelCase payload, exact money
    assert (event.source, event.detail_type) == ("order-router.routing", "OrderRouted")
    assert json.dumps(event.detail) == json.dumps(
        {
            "schema_version": 1,
            "order_id": request.order_id,
            "user_id": "trader-1",
            "idempotency_key": f"OrderRouted:{request.order_id}",
            "symbol": "RELIANCE",
            "side": "BUY",
            "quantity": 300,
            "strategy": request.routing_objective.value,
            "confidenceScore": 0.82,
            "allocations": [
                {
                    "brokerId": "zerodha",
                    "quantity": 200,
                    "allocationPercentage": "66.67",
                    "priority": 1,
                },
                {
                    "brokerId": "upstox",
                    "quantity": 100,
                    "allocationPercentage": "33.33",
                    "priority": 2,
                },
            ],
        }
    )


def test_execution_reported_detail_wraps_the_camel_case_report() -> None:
    # GIVEN a broker report WHEN its event is built
    report = _report()
    event = execution_reported_event("ord-1", "trader-1", report, uuid.uuid4())
    # THEN it comes from the brokers' source, keyed by the report's fact, the report camelCase
    assert (event.source, event.detail_type) == ("order-router.brokers", "ExecutionReported")
    assert event.detail == {
        "schema_version": EVENT_SCHEMA_VERSION,
        "order_id": "ord-1",
        "user_id": "trader-1",
        "idempotency_key": report.idempotency_key,
        "report": report.model_dump(mode="json", by_alias=True),
    }
    assert event.detail["report"]["filledQuantity"] == 40


@pytest.mark.parametrize("index", [0, 1, 2], ids=["OrderRouted", "ChildOrderPlaced", "Executed"])
def test_every_event_survives_the_wire_unchanged(index: int) -> None:
    # GIVEN an event of each detail type, sent as JSON (the outbox's JSONB, EventBridge, MSK)
    event = _events()[index]
    sent = json.loads(json.dumps(event.detail))
    # WHEN a consumer reads it back
    received = DomainEvent.from_wire(
        event_id=event.event_id, source=event.source, detail_type=event.detail_type, detail=sent
    )
    # THEN it is the same event, with the same typed payload and the same JSON
    assert received == event
    assert isinstance(received.payload, PAYLOADS[event.detail_type])
    assert received.detail == sent


def test_a_detail_type_no_contract_defines_is_refused_by_name() -> None:
    # GIVEN a detail type nobody defined WHEN it is read THEN it is refused, naming it
    with pytest.raises(UnknownDetailTypeError, match="OrderExploded"):
        read_payload("OrderExploded", {"symbol": "TCS"})


def test_an_event_from_the_wrong_source_is_refused() -> None:
    # GIVEN an OrderRouted event claiming to come from the brokers
    event = _events()[0]
    # WHEN it is read back THEN the source mismatch is refused
    with pytest.raises(ValueError, match=r"order-router\.routing"):
        DomainEvent.from_wire(
            event_id=event.event_id,
            source=EventSource.BROKERS,
            detail_type=event.detail_type,
            detail=event.detail,
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"allocations": None}, "allocations"),
        ({"side": "HOLD"}, "side"),
        ({"quantity": "many"}, "quantity"),
        ({"brokerSecret": "x"}, "brokerSecret"),
    ],
    ids=["missing", "bad enum", "bad type", "unknown field"],
)
def test_an_order_routed_payload_that_breaks_its_model_is_refused(
    change: dict[str, object], field: str
) -> None:
    # GIVEN an OrderRouted detail with a missing, impossible or unknown field
    detail = {**_events()[0].detail, **change}
    detail = {k: v for k, v in detail.items() if v is not None}
    # WHEN it is read THEN validation names the field
    with pytest.raises(ValidationError, match=field):
        read_payload(DetailType.ORDER_ROUTED, detail)


def test_the_payload_decides_source_and_detail_type() -> None:
    # GIVEN every payload model WHEN its class contract is read THEN each detail type has one
    # model, which names that detail type and a known source
    assert set(PAYLOADS) == set(DetailType)
    for detail_type, model in PAYLOADS.items():
        assert model.detail_type is detail_type
        assert model.source in set(EventSource)
    assert PAYLOADS[DetailType.ORDER_ROUTED] is OrderRoutedPayload
    assert PAYLOADS[DetailType.CHILD_ORDER_PLACED] is ChildOrderPlacedPayload
    assert PAYLOADS[DetailType.EXECUTION_REPORTED] is ExecutionReportedPayload


def test_an_event_is_immutable() -> None:
    # GIVEN an event WHEN a field is assigned THEN pydantic refuses (events are facts)
    event = _events()[0]
    with pytest.raises(ValidationError):
        event.order_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        (ApiPath.SMART_ORDER, "/api/v1/trading/intelligent/orders/smart"),
        (ApiPath.ORDER, "/api/v1/trading/intelligent/orders/<orderId>"),
        (ApiPath.TOKEN_WEBHOOK, "/api/v1/webhooks/brokers/<brokerId>/<token>"),
    ],
)
def test_a_route_template_becomes_the_resolvers_rule(path: ApiPath, rule: str) -> None:
    # GIVEN an API Gateway template WHEN turned into a Powertools rule THEN parameters keep
    # their names
    assert resolver_path(path) == rule


def test_a_path_is_filled_from_its_template() -> None:
    # GIVEN the order route WHEN a client fills it THEN it is the path the API serves
    assert ApiPath.ORDER.format(orderId="ord-1") == "/api/v1/trading/intelligent/orders/ord-1"
    assert all(p.startswith("/api/v1/") for p in ApiPath)


def test_message_types_are_the_wire_strings() -> None:
    # GIVEN the WebSocket message types WHEN serialised THEN they are their names
    assert json.dumps({"type": MessageType.EXECUTION_UPDATE}) == '{"type": "EXECUTION_UPDATE"}'
    assert {m.value for m in MessageType} == {m.name for m in MessageType}
