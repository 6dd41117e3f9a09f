"""An order's final ORDER_UPDATE is pushed exactly once, real Postgres (docs/websocket.md).

Duplicate deliveries, concurrent trackers and a placement whose every child was rejected each
announce the order's final status once: the ``(order, status)`` claim (V015) decides who pushes.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.track_execution import handler
from local.apigw import LocalLambdaContext
from shared.domain.contracts import MessageType
from shared.domain.execution import ExecutionStatus
from shared.domain.orders import ChildOrderStatus
from shared.domain.settlement import child_placed_event
from shared.wiring import Wiring
from tests.handlers.support import RecordingNotifier
from tests.handlers.test_track_execution import report, routed_children, rows


def _finals(notifier: RecordingNotifier) -> list[dict[str, Any]]:
    return [
        m[2]
        for m in notifier.messages
        if m[1] == MessageType.ORDER_UPDATE and m[2]["event"] in ("COMPLETED", "REJECTED")
    ]


def test_a_fill_delivered_twice_at_once_completes_the_order_once(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN an order of one child, and its fill in two batches delivered at the same time
    [child] = routed_children(wiring)
    fill = report(child, ExecutionStatus.FILLED, 100, "1296.00", 180)
    # WHEN two consumers track them concurrently, and the report comes once more later
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(wiring.tracker.track_batch, [[fill], [fill]]))
    wiring.tracker.track(fill)
    # THEN the order is COMPLETED and the owner heard it once
    assert rows(wiring, "SELECT status FROM orders") == [{"status": "COMPLETED"}]
    assert [(u["orderId"], u["orderStatus"]) for u in _finals(notifier)] == [
        (child.order_id, "COMPLETED")
    ]


def test_concurrent_trackers_finishing_sibling_children_complete_each_order_once(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN 12 orders of two children each
    orders = [routed_children(wiring, children=2, quantity=10) for _ in range(12)]
    start = threading.Barrier(2)

    def track(side: int) -> None:
        start.wait()
        for pair in orders:
            wiring.tracker.track(report(pair[side], ExecutionStatus.FILLED, 10, "1295.60", 150))

    # WHEN two trackers fill the first and the second child of every order at the same time
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(track, [0, 1]))
    # THEN every order is COMPLETED (neither tracker missed the other's child) and each was
    # announced exactly once
    statuses = rows(wiring, "SELECT DISTINCT status FROM orders")
    assert statuses == [{"status": "COMPLETED"}]
    announced = Counter(u["orderId"] for u in _finals(notifier))
    assert announced == Counter({pair[0].order_id: 1 for pair in orders})


def test_a_placement_whose_every_child_was_rejected_is_announced_once(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN an order whose two children were both rejected at placement
    children = routed_children(wiring, children=2, quantity=10)
    rejected = [
        c.model_copy(update={"status": ChildOrderStatus.REJECTED, "status_reason": "RMS: margin"})
        for c in children
    ]
    wiring.orders.record_placements(children[0].order_id, rejected, [], {"status": "REJECTED"})
    events = [child_placed_event(c, uuid.uuid4()) for c in rejected]
    # WHEN each child's ChildOrderPlaced event is delivered twice (at least once delivery)
    for placed in [*events, *events]:
        event = {
            "detail-type": placed.detail_type,
            "source": placed.source,
            "detail": placed.detail,
        }
        assert handler.lambda_handler(event, LocalLambdaContext("test")) == {"outcome": "notified"}
    # THEN every delivery tells of its child's reject, and the order's REJECTED is told once
    events_seen = Counter(
        m[2]["event"] for m in notifier.messages if m[1] == MessageType.ORDER_UPDATE
    )
    assert events_seen == Counter({"CHILD_REJECTED": 4, "REJECTED": 1})
    [final] = _finals(notifier)
    assert (final["orderId"], final["orderStatus"]) == (children[0].order_id, "REJECTED")


def test_a_partly_rejected_placement_announces_nothing_final_until_it_completes(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN an order with one child rejected at placement and one working
    children = routed_children(wiring, children=2, quantity=10)
    rejected = children[0].model_copy(update={"status": ChildOrderStatus.REJECTED})
    wiring.orders.record_placements(
        children[0].order_id, [rejected, children[1]], [], {"status": "PARTIALLY_ROUTED"}
    )
    placed = child_placed_event(rejected, uuid.uuid4())
    event = {"detail-type": placed.detail_type, "source": placed.source, "detail": placed.detail}
    # WHEN the reject is handled, and then the other child fills
    handler.lambda_handler(event, LocalLambdaContext("test"))
    assert _finals(notifier) == []
    wiring.tracker.track(report(children[1], ExecutionStatus.FILLED, 10, "1295.60", 150))
    # THEN the order is announced COMPLETED once, by the fill that finished it
    assert [u["orderStatus"] for u in _finals(notifier)] == ["COMPLETED"]
