"""check_report: the one rule the webhook and the tracker apply to a report and its child."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import Exchange, OrderType, Product, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.report_validation import (
    QuarantineReason,
    ReportRules,
    check_report,
    report_fingerprint,
)

PLACED = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
NOW = PLACED + timedelta(minutes=1)


def child(**changes: Any) -> ChildOrder:
    values: dict[str, Any] = {
        "child_order_id": "ord-1-1",
        "order_id": "ord-1",
        "user_id": "trader-1",
        "broker_id": "zerodha",
        "broker_order_id": "Z-1",
        "symbol": "RELIANCE",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "quantity": 100,
        "order_type": OrderType.MARKET,
        "product": Product.CNC,
        "expected_price": Decimal("1000.00"),
        "arrival_bid": Decimal("999.50"),
        "arrival_ask": Decimal("1000.50"),
        "status": ChildOrderStatus.PLACED,
        "placed_at": PLACED,
    }
    values.update(changes)
    return ChildOrder(**values)


def report(**changes: Any) -> ExecutionReport:
    values: dict[str, Any] = {
        "broker_id": "zerodha",
        "broker_order_id": "Z-1",
        "child_order_id": "ord-1-1",
        "status": ExecutionStatus.FILLED,
        "quantity": 100,
        "filled_quantity": 100,
        "average_price": Decimal("1000.20"),
        "symbol": "RELIANCE",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "event_time": PLACED + timedelta(seconds=2),
    }
    values.update(changes)
    return ExecutionReport(**values)


def test_a_report_that_fits_its_child_passes() -> None:
    # GIVEN a fill of the whole child near the expected price WHEN checked THEN nothing is wrong
    assert check_report(child(), report(), now=NOW) is None


CASES: dict[str, tuple[dict[str, Any], dict[str, Any], QuarantineReason, str]] = {
    "another broker": ({}, {"broker_id": "upstox"}, QuarantineReason.BROKER_MISMATCH, "brokerId"),
    "another broker order": (
        {},
        {"broker_order_id": "Z-2"},
        QuarantineReason.BROKER_ORDER_MISMATCH,
        "brokerOrderId",
    ),
    "another symbol": ({}, {"symbol": "TCS"}, QuarantineReason.SYMBOL_MISMATCH, "symbol"),
    "another exchange": (
        {},
        {"exchange": Exchange.BSE},
        QuarantineReason.EXCHANGE_MISMATCH,
        "exchange",
    ),
    "the other side": ({}, {"side": Side.SELL}, QuarantineReason.SIDE_MISMATCH, "side"),
    "101 of 100": (
        {},
        {"quantity": 101, "filled_quantity": 101},
        QuarantineReason.OVERFILL,
        "filledQuantity",
    ),
    "more ordered": (
        {},
        {"quantity": 120, "filled_quantity": 50, "status": ExecutionStatus.PARTIALLY_FILLED},
        QuarantineReason.QUANTITY_MISMATCH,
        "quantity",
    ),
    "fill after rejection": (
        {"status": ChildOrderStatus.REJECTED},
        {},
        QuarantineReason.FILL_AFTER_CLOSE,
        "filledQuantity",
    ),
    "cancel undoing fills": (
        {
            "status": ChildOrderStatus.PARTIALLY_FILLED,
            "filled_quantity": 60,
            "average_price": Decimal("1000"),
        },
        {"status": ExecutionStatus.CANCELLED, "filled_quantity": 40},
        QuarantineReason.FILL_REGRESSION,
        "filledQuantity",
    ),
    "before the order": (
        {},
        {"event_time": PLACED - timedelta(seconds=6)},
        QuarantineReason.EVENT_BEFORE_ORDER,
        "eventTime",
    ),
    "in the future": (
        {},
        {"event_time": NOW + timedelta(minutes=6)},
        QuarantineReason.EVENT_IN_FUTURE,
        "eventTime",
    ),
    "1e400": (
        {},
        {"average_price": Decimal("1e400")},
        QuarantineReason.PRICE_OUT_OF_BAND,
        "averagePrice",
    ),
    "26 % above expected": (
        {"arrival_bid": None, "arrival_ask": None},
        {"average_price": Decimal("1260.01")},
        QuarantineReason.PRICE_OUT_OF_BAND,
        "averagePrice",
    ),
    "26 % below the arrival mid": (
        {"expected_price": None},
        {"average_price": Decimal("739.99")},
        QuarantineReason.PRICE_OUT_OF_BAND,
        "averagePrice",
    ),
    "above a buy limit": (
        {"limit_price": Decimal("1000.00"), "order_type": OrderType.LIMIT},
        {"average_price": Decimal("1000.02")},
        QuarantineReason.LIMIT_PRICE_VIOLATED,
        "averagePrice",
    ),
    "below a sell limit": (
        {"limit_price": Decimal("1000.00"), "order_type": OrderType.LIMIT, "side": Side.SELL},
        {"average_price": Decimal("999.98"), "side": Side.SELL},
        QuarantineReason.LIMIT_PRICE_VIOLATED,
        "averagePrice",
    ),
    "average implying a negative price": (
        {
            "status": ChildOrderStatus.PARTIALLY_FILLED,
            "filled_quantity": 90,
            "average_price": Decimal("1200"),
        },
        {"average_price": Decimal("1000")},
        QuarantineReason.FILL_PRICE_IMPOSSIBLE,
        "averagePrice",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_impossible_report_names_its_reason_and_field(case: str) -> None:
    # GIVEN a child and a report that cannot be true of it
    child_changes, report_changes, reason, field = CASES[case]
    # WHEN checked
    violation = check_report(child(**child_changes), report(**report_changes), now=NOW)
    # THEN the first reason and the field at fault are named, with a message
    assert violation is not None
    assert (violation.reason, violation.field) == (reason, field)
    assert violation.message


def test_what_real_brokers_do_passes() -> None:
    # GIVEN the legitimate oddities: a fill after our timeout (the documented late fill), a
    # working report behind the recorded fill (out of order), a fill stamped 5 s before the
    # order (whole-second broker clocks), a paisa of rounding beyond a limit, a modification
    # down, a child whose broker order id we never learned, and no future bound at apply time
    timed_out = child(status=ChildOrderStatus.TIMED_OUT)
    partial = child(
        status=ChildOrderStatus.PARTIALLY_FILLED, filled_quantity=60, average_price=Decimal(1000)
    )
    limit = child(limit_price=Decimal("1000.19"), order_type=OrderType.LIMIT)
    passing = [
        (timed_out, report()),
        (
            partial,
            report(status=ExecutionStatus.PARTIALLY_FILLED, filled_quantity=40),
        ),
        (child(), report(event_time=PLACED - timedelta(seconds=5))),
        (limit, report()),
        (child(), report(quantity=80, filled_quantity=80)),
        (child(broker_order_id=None), report(broker_order_id="Z-anything")),
    ]
    # WHEN checked THEN none is a violation
    for kid, rep in passing:
        assert check_report(kid, rep, now=NOW) is None
    assert check_report(child(), report(event_time=NOW + timedelta(days=1)), now=None) is None


def test_the_band_is_a_rule_not_a_constant() -> None:
    # GIVEN a fill 3 % from the expected price WHEN checked with a 2 % band THEN it is out
    rules = ReportRules(price_band=Decimal("0.02"))
    violation = check_report(child(), report(average_price=Decimal("1030")), now=NOW, rules=rules)
    assert violation is not None
    assert violation.reason is QuarantineReason.PRICE_OUT_OF_BAND


def test_fingerprint_tells_a_copy_from_a_correction() -> None:
    # GIVEN a report, an identical copy and a correction with the same idempotency key
    first, copy, correction = report(), report(), report(average_price=Decimal("1000.30"))
    # WHEN fingerprinted THEN the copy matches and the correction does not
    assert first.idempotency_key == correction.idempotency_key
    assert report_fingerprint(first) == report_fingerprint(copy)
    assert report_fingerprint(first) != report_fingerprint(correction)
