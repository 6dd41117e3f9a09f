"""ExecutionReport validation and idempotency key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.errors import InvalidExecutionReportError
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import Exchange, Side

T0 = datetime(2026, 11, 24, 3, 45, tzinfo=UTC)


def report(**overrides: Any) -> ExecutionReport:
    fields: dict[str, Any] = {
        "broker_id": "zerodha",
        "broker_order_id": "220303000308932",
        "child_order_id": "ord-1-c1",
        "status": ExecutionStatus.PARTIALLY_FILLED,
        "quantity": 100,
        "filled_quantity": 40,
        "average_price": Decimal("100.25"),
        "symbol": "SBIN",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "event_time": T0,
    }
    fields.update(overrides)
    return ExecutionReport(**fields)


def test_idempotency_key_is_broker_order_status_and_filled_quantity() -> None:
    # GIVEN a partial fill report
    r = report()
    # WHEN its key is read
    key = r.idempotency_key
    # THEN it joins broker, broker order id, status and cumulative filled quantity
    assert key == "zerodha:220303000308932:PARTIALLY_FILLED:40"


def test_duplicate_reports_share_a_key_and_progress_changes_it() -> None:
    # GIVEN the same report twice and a later one with more fills
    first, duplicate = report(), report(status_message="again")
    later = report(filled_quantity=70, average_price=Decimal("100.30"))
    # WHEN keys are compared
    # THEN the duplicate collides (stored once) and progress does not
    assert first.idempotency_key == duplicate.idempotency_key
    assert first.idempotency_key != later.idempotency_key


def test_report_serialises_camel_case() -> None:
    # GIVEN a report
    r = report()
    # WHEN dumped by alias
    dumped = r.model_dump(mode="json", by_alias=True)
    # THEN fields are camelCase as on the wire
    assert dumped["brokerOrderId"] == "220303000308932"
    assert dumped["filledQuantity"] == 40
    assert dumped["averagePrice"] == "100.25"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"quantity": 0, "filled_quantity": 0, "average_price": None, "status": "OPEN"},
            "quantity",
        ),
        ({"quantity": -5}, "quantity"),
        ({"filled_quantity": -1}, "filledQuantity"),
        ({"filled_quantity": 101}, "filledQuantity"),
        ({"average_price": Decimal(0)}, "averagePrice"),
        ({"average_price": Decimal("-1.5")}, "averagePrice"),
        ({"average_price": None}, "averagePrice"),
        (
            {"status": ExecutionStatus.OPEN, "filled_quantity": 0, "average_price": Decimal(1)},
            "averagePrice",
        ),
        ({"status": ExecutionStatus.FILLED}, "status"),
        ({"status": ExecutionStatus.OPEN}, "status"),
        ({"status": ExecutionStatus.REJECTED}, "status"),
        (
            {"status": ExecutionStatus.CANCELLED, "filled_quantity": 100},
            "status",
        ),
        ({"event_time": datetime(2026, 11, 24, 9, 15)}, "eventTime"),
    ],
)
def test_impossible_reports_are_refused_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    # GIVEN a report with one impossible figure
    # WHEN it is built
    # THEN InvalidExecutionReportError names the field
    with pytest.raises(InvalidExecutionReportError) as caught:
        report(**overrides)
    assert caught.value.field == field
    assert caught.value.code == "INVALID_EXECUTION_REPORT"


def test_terminal_statuses() -> None:
    # GIVEN every status
    # WHEN asked whether it is terminal
    terminal = {s for s in ExecutionStatus if s.is_terminal}
    # THEN only filled, cancelled and rejected are
    assert terminal == {
        ExecutionStatus.FILLED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.REJECTED,
    }
