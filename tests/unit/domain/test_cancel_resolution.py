"""What a timed-out child becomes once its broker was asked to cancel it (pure rules)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import Exchange, OrderType, Product, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import (
    UNCONFIRMED,
    BrokerLookup,
    LookupOutcome,
    parent_status,
    quantity_moved_on,
    resolve_timed_out,
    unfilled_remainder,
)
from tests import factories


def timed_out(**changes: object) -> ChildOrder:
    fields: dict[str, object] = {
        "child_order_id": "ord-1-1-1",
        "order_id": "ord-1",
        "user_id": "trader-1",
        "broker_id": "kite",
        "symbol": "RELIANCE",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "quantity": 100,
        "order_type": OrderType.MARKET,
        "product": Product.CNC,
        "status": ChildOrderStatus.TIMED_OUT,
        "status_reason": "TIMEOUT: no answer within 2000 ms",
    }
    return ChildOrder.model_validate(fields | changes)


def report(status: ExecutionStatus, filled: int) -> ExecutionReport:
    return ExecutionReport(
        broker_id="kite",
        broker_order_id="K-1",
        child_order_id="ord-1-1-1",
        status=status,
        quantity=100,
        filled_quantity=filled,
        average_price=Decimal("100") if filled else None,
        symbol="RELIANCE",
        exchange=Exchange.NSE,
        side=Side.BUY,
        event_time=factories.NOW,
    )


def test_a_child_the_broker_never_booked_frees_all_of_it() -> None:
    # GIVEN a timed-out child the broker has no order for
    child = timed_out()
    # WHEN it is resolved
    resolution = resolve_timed_out(child, BrokerLookup(outcome=LookupOutcome.NOT_FOUND))
    # THEN it stays TIMED_OUT (a late report is still taken) and all of it may cascade
    assert resolution.child == child
    assert resolution.free_quantity == 100


@pytest.mark.parametrize(
    ("status", "filled", "free"),
    [
        (ChildOrderStatus.CANCELLED, 0, 100),
        (ChildOrderStatus.CANCELLED, 35, 65),
        (ChildOrderStatus.REJECTED, 0, 100),
        (ChildOrderStatus.FILLED, 100, 0),
        # A broker claiming more than was ordered frees nothing (the tracker judges the report).
        (ChildOrderStatus.FILLED, 250, 0),
    ],
)
def test_a_confirmed_end_frees_what_was_not_filled(
    status: ChildOrderStatus, filled: int, free: int
) -> None:
    # GIVEN the broker's final state of a timed-out child
    cancel = BrokerLookup(
        outcome=LookupOutcome.FOUND,
        status=status,
        broker_order_id="K-1",
        filled_quantity=filled,
        reports=(report(ExecutionStatus(status.value), min(filled, 100)),),
    )
    # WHEN it is resolved
    resolution = resolve_timed_out(timed_out(), cancel)
    # THEN what was not filled is free; the child is working until its reports close it
    assert resolution.free_quantity == free
    assert resolution.child.status is ChildOrderStatus.PLACED
    assert resolution.child.broker_order_id == "K-1"
    assert resolution.reports == cancel.reports
    assert resolution.child.status_reason is not None
    assert f"{status.value.lower()} at the broker" in resolution.child.status_reason


@pytest.mark.parametrize(
    "cancel",
    [
        BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="SERVER: 503"),
        BrokerLookup(
            outcome=LookupOutcome.FOUND,
            status=ChildOrderStatus.PLACED,
            broker_order_id="K-1",
            filled_quantity=0,
        ),
        BrokerLookup(
            outcome=LookupOutcome.FOUND,
            status=ChildOrderStatus.PARTIALLY_FILLED,
            broker_order_id="K-1",
            filled_quantity=40,
        ),
        # Cancelled, but the broker did not say how much it filled first.
        BrokerLookup(
            outcome=LookupOutcome.FOUND, status=ChildOrderStatus.CANCELLED, broker_order_id="K-1"
        ),
    ],
)
def test_an_unconfirmed_cancel_frees_nothing(cancel: BrokerLookup) -> None:
    # GIVEN a cancel whose outcome is not known for certain
    # WHEN the child is resolved
    resolution = resolve_timed_out(timed_out(), cancel)
    # THEN it stays TIMED_OUT, nothing cascades, and the reason says why
    assert resolution.free_quantity == 0
    assert resolution.child.status is ChildOrderStatus.TIMED_OUT
    assert resolution.child.status_reason is not None
    assert "cancel unconfirmed" in resolution.child.status_reason
    assert resolution.reports == ()


def test_the_remainder_of_a_child_is_what_its_broker_cancelled_unfilled() -> None:
    child = timed_out(status=ChildOrderStatus.PLACED)
    # GIVEN / WHEN / THEN: a partial fill then a cancel leaves the rest
    partial = (report(ExecutionStatus.PARTIALLY_FILLED, 60), report(ExecutionStatus.CANCELLED, 60))
    assert unfilled_remainder(child, partial) == 40
    # a child still working, or filled, leaves nothing
    assert unfilled_remainder(child, (report(ExecutionStatus.PARTIALLY_FILLED, 60),)) == 0
    assert unfilled_remainder(child, (report(ExecutionStatus.FILLED, 100),)) == 0
    assert unfilled_remainder(child, ()) == 0


def test_rerouted_quantity_counts_once_in_the_parent_status() -> None:
    # GIVEN a child of 100 that filled 60 and whose 40 went to a second child
    first = timed_out(status=ChildOrderStatus.PLACED)
    second = timed_out(child_order_id="ord-1-c1", status=ChildOrderStatus.PLACED, quantity=40)
    # WHEN / THEN the order is fully routed, neither more nor less
    assert parent_status([first, second], 100, {first.child_order_id: 40}) == "ROUTED"
    # and without the second child, only partly
    assert parent_status([first], 100, {first.child_order_id: 40}) == "PARTIALLY_ROUTED"


def test_only_a_timed_out_child_whose_quantity_moved_on_can_over_fill() -> None:
    # GIVEN a timeout that cascaded, one held, one the reconciler settled, one placed
    cascaded = resolve_timed_out(timed_out(), BrokerLookup(outcome=LookupOutcome.NOT_FOUND))
    held = resolve_timed_out(timed_out(), BrokerLookup(outcome=LookupOutcome.UNKNOWN))
    reconciled = timed_out(status_reason=UNCONFIRMED)
    placed = timed_out(status=ChildOrderStatus.PLACED)
    # WHEN / THEN only the first may fill on top of its cascade
    assert quantity_moved_on(cascaded.child) is True
    assert quantity_moved_on(held.child) is False
    assert quantity_moved_on(reconciled) is False
    assert quantity_moved_on(placed) is False
