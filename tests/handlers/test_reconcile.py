"""reconcile: orders whose process died between their decision and their answer are finished.

A crash is simulated by an exception that no handler catches (``ProcessDied`` is a
``BaseException``, like the ``SystemExit`` of a dying process), raised at the step where the real
process would have died; what it leaves in Postgres is exactly what a SIGKILL leaves.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from functions.reconcile import handler as reconcile
from functions.route_order import handler as route_order
from local.apigw import LocalLambdaContext
from shared.domain.contracts import DetailType
from shared.domain.orders import ChildOrder
from shared.domain.settlement import NEVER_PLACED, UNCONFIRMED
from shared.ports import PlacementResult
from shared.services.placement import ChildPlacer
from shared.wiring import Wiring
from tests.handlers.support import API, EventSink, call

SMART = f"{API}/orders/smart"
ORDER = {"symbol": "RELIANCE", "side": "BUY", "quantity": 300, "orderType": "MARKET"}


class ProcessDied(BaseException):
    """The process ended here (nothing above catches a BaseException that is not Exception)."""


def rows(wiring: Wiring, sql: str, *params: Any) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        return list(conn.execute(sql, params).fetchall())


def crash_before_placing(monkeypatch: pytest.MonkeyPatch) -> None:
    def died(*args: Any, **kwargs: Any) -> Any:
        raise ProcessDied

    monkeypatch.setattr(ChildPlacer, "place", died)


def submit_and_crash(body: dict[str, Any]) -> None:
    with pytest.raises(ProcessDied):
        call(route_order, "POST", SMART, body=body)


def age_orders(wiring: Wiring, seconds: int) -> None:
    """Make every stored order ``seconds`` older (past the reconciler's bound)."""
    with wiring.database.connection() as conn:
        conn.execute(
            "UPDATE orders SET created_at = created_at - make_interval(secs => %s)", (seconds,)
        )


def run_reconcile() -> dict[str, int]:
    result: dict[str, int] = reconcile.lambda_handler({}, LocalLambdaContext("reconcile", 60))
    return result


@pytest.fixture
def stuck_order(wiring: Wiring, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An order stored with PENDING children whose process died before placing them."""
    body = {**ORDER, "clientOrderId": "crash-1"}
    with monkeypatch.context() as crash:
        crash_before_placing(crash)
        submit_and_crash(body)
    return body


def test_a_child_never_placed_is_failed_and_a_retry_gets_the_final_answer(
    wiring: Wiring, aws: EventSink, stuck_order: dict[str, Any]
) -> None:
    # GIVEN an order whose children were stored PENDING and never placed, older than the bound
    [order] = rows(wiring, "SELECT order_id, status, response FROM orders")
    assert order["response"] is None
    assert {c["status"] for c in rows(wiring, "SELECT status FROM child_orders")} == {"PENDING"}
    age_orders(wiring, 3600)
    # WHEN the reconciler runs
    result = run_reconcile()
    # THEN every child failed as never placed, the order is REJECTED with a stored answer
    children = rows(wiring, "SELECT child_order_id, status, status_reason FROM child_orders")
    assert {(c["status"], c["status_reason"]) for c in children} == {("REJECTED", NEVER_PLACED)}
    [order] = rows(wiring, "SELECT order_id, status, response FROM orders")
    assert order["status"] == "REJECTED"
    assert result == {
        "orders": 1,
        "adopted": 0,
        "neverPlaced": len(children),
        "unconfirmed": 0,
        # Nothing was placed: there is nothing to poll.
        "polled": 0,
        "recovered": 0,
        "notFound": 0,
        "unanswered": 0,
    }
    # AND one ChildOrderPlaced per child reached the bus; only the OrderRouted the dead
    # process never published waits in the outbox, and the relay sends it
    placed = [e for e in aws.drain() if e["detail-type"] == DetailType.CHILD_ORDER_PLACED]
    assert sorted(e["detail"]["child"]["childOrderId"] for e in placed) == sorted(
        c["child_order_id"] for c in children
    )
    unsent = "SELECT detail_type FROM event_outbox WHERE published_at IS NULL"
    assert rows(wiring, unsent) == [{"detail_type": DetailType.ORDER_ROUTED}]
    wiring.outbox.relay(wiring.publisher.publish, min_age_s=0)
    assert rows(wiring, unsent) == []
    # AND a retry of the key gets that final answer, naming why
    status, body, _ = call(route_order, "POST", SMART, body=stuck_order)
    assert status == 200, body
    assert (body["orderId"], body["status"], body["replayed"]) == (
        order["order_id"],
        "REJECTED",
        True,
    )
    assert {a["status"] for a in body["allocations"]} == {"REJECTED"}
    assert {a["reason"] for a in body["allocations"]} == {NEVER_PLACED}


def test_an_order_younger_than_the_bound_is_left_alone(
    wiring: Wiring, stuck_order: dict[str, Any]
) -> None:
    # GIVEN a stuck order stored just now (its request might still be running)
    # WHEN the reconciler runs
    result = run_reconcile()
    # THEN nothing changed
    assert result["orders"] == 0
    assert {c["status"] for c in rows(wiring, "SELECT status FROM child_orders")} == {"PENDING"}
    assert rows(wiring, "SELECT response FROM orders") == [{"response": None}]


def test_before_reconciling_a_retry_is_409_still_being_processed(
    wiring: Wiring, stuck_order: dict[str, Any]
) -> None:
    # GIVEN a stuck order and a routing service that waits briefly for a first request
    wiring.routing._replay._wait_s = 0.1
    # WHEN the key is retried before the reconciler ran
    status, body, _ = call(route_order, "POST", SMART, body=stuck_order)
    # THEN it is a 409 in the one error shape (and the reconciler is what ends it)
    assert status == 409
    assert "still being processed" in body["error"]["message"]


def test_a_child_the_broker_holds_is_adopted_with_its_fills(
    wiring: Wiring, aws: EventSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an order whose children reached the (paper) brokers, but whose process died
    # before it recorded their answers
    def died(*args: Any, **kwargs: Any) -> None:
        raise ProcessDied

    with monkeypatch.context() as crash:
        crash.setattr(wiring.orders, "record_placements", died)
        submit_and_crash({**ORDER, "clientOrderId": "crash-adopt"})
    age_orders(wiring, 3600)
    aws.drain()
    aws.seen.clear()
    # WHEN the reconciler runs
    result = run_reconcile()
    # THEN each child took the broker's state and order id, and the order is ROUTED
    children = rows(wiring, "SELECT status, broker_order_id FROM child_orders")
    assert result["adopted"] == len(children)
    assert result["neverPlaced"] == 0
    assert {c["status"] for c in children} <= {"PLACED", "FILLED", "PARTIALLY_FILLED"}
    assert all(c["broker_order_id"] for c in children)
    assert rows(wiring, "SELECT status FROM orders") == [{"status": "ROUTED"}]
    # AND the broker's fills were published for the tracker, as the normal path would
    types = aws.detail_types()
    assert types.count(DetailType.CHILD_ORDER_PLACED) == len(children)
    assert types.count(DetailType.EXECUTION_REPORTED) >= len(children)


class NoLookupBroker:
    """A broker adapter whose API cannot look orders up (and that the process never reached)."""

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        raise ProcessDied


def test_a_child_whose_broker_cannot_tell_times_out_as_unconfirmed(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every broker without a look-up, and an order that died while placing
    for broker in wiring.brokers.list_enabled():
        wiring.gateway.register(broker.broker_id, NoLookupBroker())
    submit_and_crash({**ORDER, "clientOrderId": "crash-unknown"})
    age_orders(wiring, 3600)
    # WHEN the reconciler runs
    result = run_reconcile()
    # THEN the children are TIMED_OUT (a late report is still taken), not silently rejected
    children = rows(wiring, "SELECT status, status_reason FROM child_orders")
    assert {(c["status"], c["status_reason"]) for c in children} == {("TIMED_OUT", UNCONFIRMED)}
    assert result["unconfirmed"] == len(children)
    assert rows(wiring, "SELECT status FROM orders") == [{"status": "REJECTED"}]


def test_an_order_stored_before_v005_is_answered_from_its_columns(
    wiring: Wiring, stuck_order: dict[str, Any]
) -> None:
    # GIVEN a stuck order without the decision document (stored before V005)
    with wiring.database.connection() as conn:
        conn.execute("UPDATE order_routing_decisions SET decision = NULL")
    age_orders(wiring, 3600)
    # WHEN the reconciler runs and the key is retried
    run_reconcile()
    status, body, _ = call(route_order, "POST", SMART, body=stuck_order)
    # THEN the answer carries the stored decision
    [decision] = rows(
        wiring, "SELECT routing_strategy, confidence_score FROM order_routing_decisions"
    )
    assert status == 200, body
    assert body["strategy"] == decision["routing_strategy"]
    assert body["confidenceScore"] == pytest.approx(float(decision["confidence_score"]))
    assert body["status"] == "REJECTED"


def test_two_reconcilers_at_once_settle_each_order_once(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN eight stuck orders
    crash_before_placing(monkeypatch)
    for n in range(8):
        submit_and_crash({**ORDER, "clientOrderId": f"crash-many-{n}"})
    age_orders(wiring, 3600)
    # WHEN two reconcilers run at the same time
    reports = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        reports.append(wiring.reconciler.run())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # THEN the orders were split between them, each settled once: one event per child
    assert sum(r.orders for r in reports) == 8
    children = rows(wiring, "SELECT child_order_id FROM child_orders")
    events = rows(
        wiring,
        "SELECT detail->'child'->>'childOrderId' AS child FROM event_outbox WHERE detail_type = %s",
        DetailType.CHILD_ORDER_PLACED,
    )
    assert sorted(e["child"] for e in events) == sorted(c["child_order_id"] for c in children)
    assert rows(wiring, "SELECT count(*) AS n FROM orders WHERE response IS NULL") == [{"n": 0}]
