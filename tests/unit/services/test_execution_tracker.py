"""ExecutionTracker's batch fold on in-memory fakes: duplicates, quarantine, late fills."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.orders import ChildOrder, ChildOrderStatus
from tests import factories
from tests.fakes import TrackingWorld, tracking_world

NOW = factories.NOW


def world(*statuses: ChildOrderStatus) -> tuple[TrackingWorld, list[ChildOrder]]:
    """A tracker with one order of ``len(statuses)`` children of 10 shares at zerodha."""
    w = tracking_world([factories.profile("zerodha")], now=NOW + timedelta(minutes=5))
    order = factories.order(quantity=10 * len(statuses))
    routing = factories.decision(order, {"zerodha": 10 * len(statuses)})
    [template] = factories.children(order, routing)
    children = [
        template.model_copy(
            update={
                "child_order_id": f"{order.order_id}-{n}",
                "quantity": 10,
                "status": status,
                "broker_order_id": f"Z-{n}",
                "placed_at": NOW,
            }
        )
        for n, status in enumerate(statuses, start=1)
    ]
    for child in children:
        w.executions.add_child(child)
    return w, children


def report(
    child: ChildOrder, status: ExecutionStatus, filled: int, price: str | None, ms: int = 100
) -> ExecutionReport:
    return ExecutionReport(
        broker_id=child.broker_id,
        broker_order_id=child.broker_order_id or "x",
        child_order_id=child.child_order_id,
        status=status,
        quantity=child.quantity,
        filled_quantity=filled,
        average_price=Decimal(price) if price else None,
        symbol=child.symbol,
        exchange=child.exchange,
        side=child.side,
        event_time=NOW + timedelta(milliseconds=ms),
    )


def test_a_batch_folds_in_order_a_duplicate_changes_nothing() -> None:
    # GIVEN a placed child, and a batch with its partial fill twice and then its fill
    w, [child] = world(ChildOrderStatus.PLACED)
    partial = report(child, ExecutionStatus.PARTIALLY_FILLED, 4, "2950.10")
    filled = report(child, ExecutionStatus.FILLED, 10, "2950.20", ms=200)
    # WHEN the batch is tracked
    outcomes = w.tracker.track_batch([partial, partial, filled])
    # THEN the repeat is a duplicate, and the fill saw the child as the partial left it
    assert [o.status for o in outcomes] == ["recorded", "duplicate", "recorded"]
    assert outcomes[2].child is not None
    assert outcomes[2].child.filled_quantity == 4
    assert [(r.status, r.filled_quantity) for r in w.executions.records] == [
        ("PARTIALLY_FILLED", 4),
        ("FILLED", 6),
    ]
    stored = w.executions.children[child.child_order_id]
    assert (stored.status, stored.filled_quantity) == (ChildOrderStatus.FILLED, 10)
    # AND the trader heard of each stored report once, after the commit
    assert [m[1] for m in w.notifier.to_users] == ["EXECUTION_UPDATE", "EXECUTION_UPDATE"]


def test_a_report_key_stored_by_an_earlier_batch_is_a_duplicate() -> None:
    # GIVEN a fill already tracked
    w, [child] = world(ChildOrderStatus.PLACED)
    filled = report(child, ExecutionStatus.FILLED, 10, "2950.20")
    w.tracker.track(filled)
    # WHEN the broker resends it
    again = w.tracker.track(filled)
    # THEN nothing is stored twice and nobody is told twice
    assert again.status == "duplicate"
    assert len(w.executions.records) == 1
    assert len(w.notifier.to_users) == 1


def test_an_over_fill_is_quarantined_and_the_rest_of_the_batch_applied() -> None:
    # GIVEN two placed children; one batch fills the first, then claims 12 of its 10 filled
    # through the broker's ordered quantity, and fills the second
    w, [a, b] = world(ChildOrderStatus.PLACED, ChildOrderStatus.PLACED)
    over = report(a.model_copy(update={"quantity": 12}), ExecutionStatus.FILLED, 12, "2950.20")
    batch = [
        report(a, ExecutionStatus.FILLED, 10, "2950.20"),
        over,
        report(b, ExecutionStatus.FILLED, 10, "2950.30"),
    ]
    # WHEN the batch is tracked
    outcomes = w.tracker.track_batch(batch)
    # THEN the over-fill is held with its reason, never applied, and the others are stored
    assert [o.status for o in outcomes] == ["recorded", "quarantined", "recorded"]
    assert outcomes[1].reason == "OVERFILL"
    [held] = w.quarantine.held
    assert (held.stage, held.reason, held.child_order_id) == (
        "tracking",
        "OVERFILL",
        a.child_order_id,
    )
    assert [r.child_order_id for r in w.executions.records] == [a.child_order_id, b.child_order_id]
    assert w.executions.children[a.child_order_id].filled_quantity == 10


def test_a_late_fill_after_a_timeout_is_recorded_and_flagged_to_the_trader() -> None:
    # GIVEN a child we gave up on (TIMED_OUT, its quantity cascaded elsewhere)
    w, [child] = world(ChildOrderStatus.TIMED_OUT)
    # WHEN its broker reports a fill after all
    outcome = w.tracker.track(report(child, ExecutionStatus.FILLED, 10, "2950.20"))
    # THEN the fill is recorded (the trader holds the shares) and flagged late
    assert outcome.status == "recorded"
    assert outcome.late is True
    assert w.executions.children[child.child_order_id].status is ChildOrderStatus.FILLED
    [(user, kind, data)] = w.notifier.to_users
    assert (user, kind, data["lateAfterTimeout"]) == (child.user_id, "EXECUTION_UPDATE", True)


def test_a_report_for_an_unknown_broker_order_stores_nothing() -> None:
    # GIVEN a report naming no child and a broker order id we never sent
    w, [child] = world(ChildOrderStatus.PLACED)
    stranger = report(child, ExecutionStatus.FILLED, 10, "2950.20").model_copy(
        update={"child_order_id": None, "broker_order_id": "Z-never-sent"}
    )
    # WHEN it is tracked
    outcome = w.tracker.track(stranger)
    # THEN it is an unknown child, and nothing is stored, learned or pushed
    assert outcome.status == "unknown_child"
    assert w.executions.records == []
    assert w.notifier.to_users == []
    assert w.notifier.to_symbols == []


def test_a_report_found_by_broker_order_id_is_learned_and_the_profile_pushed() -> None:
    # GIVEN a report that names only the broker's order id
    w, [child] = world(ChildOrderStatus.PLACED)
    before = w.profiles.profiles[("zerodha", "RELIANCE")].sample_count
    filled = report(child, ExecutionStatus.FILLED, 10, "2950.20").model_copy(
        update={"child_order_id": None}
    )
    # WHEN it is tracked
    outcome = w.tracker.track(filled)
    # THEN it is matched to its child, the profile learned one sample, and the cache and the
    # symbol's subscribers got the new profile
    assert outcome.status == "recorded"
    assert outcome.profile is not None
    assert outcome.profile.sample_count == before + 1
    assert w.profiles.cached["RELIANCE"]["zerodha"] == outcome.profile
    [(symbol, kind, data)] = w.notifier.to_symbols
    assert (symbol, kind, data["sampleCount"]) == ("RELIANCE", "PROFILE_UPDATE", before + 1)
