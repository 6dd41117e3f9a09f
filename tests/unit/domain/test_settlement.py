"""How a PENDING child settles from its broker's answer, and how children settle the parent."""

from __future__ import annotations

import uuid

import pytest

from shared.domain.contracts import DetailType
from shared.domain.models import Exchange, OrderType, Product, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import (
    NEVER_PLACED,
    UNCONFIRMED,
    BrokerLookup,
    LookupOutcome,
    child_placed_event,
    parent_status,
    settle_child,
)


def child(quantity: int = 100, status: ChildOrderStatus = ChildOrderStatus.PENDING) -> ChildOrder:
    return ChildOrder(
        child_order_id=f"c-{uuid.uuid4().hex[:8]}",
        order_id="ord-1",
        user_id="trader-1",
        broker_id="zerodha",
        symbol="TCS",
        exchange=Exchange.NSE,
        side=Side.BUY,
        quantity=quantity,
        order_type=OrderType.MARKET,
        product=Product.CNC,
        status=status,
    )


@pytest.mark.parametrize(
    ("lookup", "status", "reason"),
    [
        (BrokerLookup(outcome=LookupOutcome.NOT_FOUND), ChildOrderStatus.REJECTED, NEVER_PLACED),
        (BrokerLookup(outcome=LookupOutcome.UNKNOWN), ChildOrderStatus.TIMED_OUT, UNCONFIRMED),
        (
            BrokerLookup(outcome=LookupOutcome.FOUND, broker_order_id="B-1"),
            ChildOrderStatus.PLACED,
            None,
        ),
        (
            BrokerLookup(
                outcome=LookupOutcome.FOUND,
                status=ChildOrderStatus.PENDING,
                broker_order_id="B-1",
            ),
            ChildOrderStatus.PLACED,
            None,
        ),
        (
            BrokerLookup(
                outcome=LookupOutcome.FOUND,
                status=ChildOrderStatus.REJECTED,
                broker_order_id="B-1",
                reason="RMS",
            ),
            ChildOrderStatus.REJECTED,
            "RMS",
        ),
    ],
)
def test_a_pending_child_settles_from_the_brokers_answer(
    lookup: BrokerLookup, status: ChildOrderStatus, reason: str | None
) -> None:
    # GIVEN a child stored PENDING WHEN its broker answers THEN it takes the rule's state
    settled = settle_child(child(), lookup)
    assert (settled.status, settled.status_reason) == (status, reason)
    if lookup.outcome is LookupOutcome.FOUND:
        assert settled.broker_order_id == "B-1"


def test_the_parent_counts_only_quantity_that_reached_the_market() -> None:
    # GIVEN children of a 300-share order in various states
    placed, rejected = ChildOrderStatus.PLACED, ChildOrderStatus.REJECTED
    timed_out = ChildOrderStatus.TIMED_OUT
    # WHEN the parent's status is derived THEN failed quantity does not count
    assert parent_status([child(200, placed), child(100, placed)], 300) == "ROUTED"
    assert parent_status([child(200, placed), child(100, rejected)], 300) == "PARTIALLY_ROUTED"
    assert parent_status([child(200, timed_out), child(100, rejected)], 300) == "REJECTED"


def test_a_child_placed_event_is_keyed_by_the_child() -> None:
    # GIVEN a settled child WHEN its event is built THEN consumers can de-duplicate it
    settled = settle_child(child(), BrokerLookup(outcome=LookupOutcome.NOT_FOUND))
    event = child_placed_event(settled, uuid.uuid4())
    assert (
        event.detail["idempotency_key"]
        == f"{DetailType.CHILD_ORDER_PLACED}:{settled.child_order_id}"
    )
    assert event.detail["child"]["status"] == "REJECTED"
