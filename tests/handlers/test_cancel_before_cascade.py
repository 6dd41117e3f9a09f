"""Cancel before cascade, over real HTTP: a timed-out child is cancelled at its broker first.

Every seeded broker is served by one Kite simulator (its order book shows every child), with a
placement timeout of 500 ms; a scripted order answers its placement after 1 s, although the
order exists at the broker meanwhile. The route_order handler, the reconcile handler and the
tracker run on real Postgres.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from functions.reconcile import handler as reconcile
from functions.route_order import handler as route_order
from local.apigw import LocalLambdaContext
from local.simulators import Behaviour, RunningSimulator, start_simulator
from shared.adapters.brokers.gateway import ClientGateway
from shared.adapters.brokers.kite import KiteClient
from shared.domain.broker_orders import BrokerAccount
from shared.domain.contracts import DetailType
from shared.domain.execution import ExecutionReport
from shared.services.placement import ChildPlacer
from shared.wiring import Wiring
from tests.handlers.support import API, RecordingNotifier, call

SMART = f"{API}/orders/smart"
TOKEN = "kite-access-token"
ACCOUNT = BrokerAccount(
    account_id="platform", api_key="kite-api-key", access_token=SecretStr(TOKEN)
)
PRICE = Decimal("1296.05")
"""Fill price near the seeded RELIANCE price (a fill 10x off the market is quarantined)."""
LATE = 1.0
"""Seconds a scripted order takes to answer its placement (the timeout is 0.5 s)."""


class ProcessDied(BaseException):
    """The process ended here (nothing above catches a BaseException that is not Exception)."""


class FailingCancels(KiteClient):
    """The Kite client, whose cancels the simulator answers with these error families."""

    def __init__(self, sim: Any, url: str, *failures: str) -> None:
        super().__init__(url)
        self._sim = sim
        self._failures = failures

    def cancel(self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float) -> str:
        self._sim.fail_next(*self._failures)
        return super().cancel(account, broker_order_id, timeout_s=timeout_s)


@pytest.fixture
def kite(wiring: Wiring) -> Iterator[RunningSimulator]:
    """One Kite simulator behind every seeded broker id (no postbacks: polling brings them)."""
    running = start_simulator(
        "kite", access_token=TOKEN, api_key="kite-api-key", api_secret="s", postback_url=None
    )
    running.sim.behaviour = Behaviour(fill_price=PRICE)
    use_client(wiring, running, KiteClient(running.url))
    try:
        yield running
    finally:
        running.stop()


def use_client(wiring: Wiring, running: RunningSimulator, client: KiteClient) -> None:
    for broker in wiring.brokers.list_enabled():
        gateway = ClientGateway(broker.broker_id, client, lambda _user: ACCOUNT)
        wiring.gateway.register(broker.broker_id, gateway)


def rows(wiring: Wiring, sql: str, *params: Any) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        return list(conn.execute(sql, params).fetchall())


def submit(quantity: int, key: str) -> dict[str, Any]:
    body = {"symbol": "RELIANCE", "side": "BUY", "quantity": quantity, "orderType": "MARKET"}
    status, answer, _ = call(route_order, "POST", SMART, body={**body, "clientOrderId": key})
    assert status == 200, answer
    result: dict[str, Any] = answer
    return result


def children(wiring: Wiring) -> list[dict[str, Any]]:
    return rows(
        wiring,
        "SELECT child_order_id, broker_id, broker_order_id, quantity, status, status_reason,"
        " filled_quantity, attempt FROM child_orders ORDER BY attempt, child_order_id",
    )


def track_everything(wiring: Wiring) -> None:
    """Apply every ExecutionReported in the outbox, as track_execution does (exactly once)."""
    details = rows(
        wiring,
        "SELECT detail FROM event_outbox WHERE detail_type = %s ORDER BY id",
        DetailType.EXECUTION_REPORTED,
    )
    reports = [ExecutionReport.model_validate(r["detail"]["report"]) for r in details]
    if reports:
        wiring.tracker.track_batch(reports)


def poll_now(wiring: Wiring) -> dict[str, int]:
    """Age every child past the polling bound, run the reconcile handler, then track."""
    with wiring.database.connection() as conn:
        conn.execute("UPDATE child_orders SET placed_at = placed_at - interval '1 hour'")
    result: dict[str, int] = reconcile.lambda_handler({}, LocalLambdaContext("reconcile", 60))
    track_everything(wiring)
    return result


def filled(wiring: Wiring) -> int:
    [row] = rows(wiring, "SELECT COALESCE(sum(filled_quantity), 0) AS n FROM child_orders")
    return int(row["n"])


def order_status(wiring: Wiring) -> str:
    [row] = rows(wiring, "SELECT status FROM orders")
    return str(row["status"])


def test_a_fill_that_came_before_the_cancel_is_kept_and_nothing_cascades(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a broker that fills the order but answers its placement after the timeout
    kite.sim.script(Behaviour(outcome="fill", fill_price=PRICE, ack_delay_s=LATE))
    # WHEN an order is routed
    result = submit(1, "late-fill")
    # THEN the cancel found the fill: the child has its broker order id, no quantity moved on
    [child] = children(wiring)
    assert child["broker_order_id"] in kite.sim.book.orders
    assert "filled at the broker with 1 filled" in child["status_reason"]
    assert [c["toBrokerId"] for c in result["cascades"]] == []
    assert result["status"] == "ROUTED"
    assert len(kite.sim.book.orders) == 1
    # AND the fill is tracked once; the order holds exactly what it asked for
    track_everything(wiring)
    [child] = children(wiring)
    assert (child["status"], child["filled_quantity"]) == ("FILLED", 1)
    assert order_status(wiring) == "COMPLETED"


def test_an_open_order_is_cancelled_before_its_quantity_cascades(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a broker that books the order open but answers after the timeout, then one that fills
    kite.sim.script(Behaviour(outcome="open", ack_delay_s=LATE), Behaviour(fill_price=PRICE))
    # WHEN an order is routed
    result = submit(1, "cancelled")
    # THEN the first order was cancelled at the broker before the quantity went to the next one
    first, second = (kite.sim.book.orders[i] for i in sorted(kite.sim.book.orders))
    assert (first.status, second.status) == ("CANCELLED", "COMPLETE")
    timed_out, cascaded = children(wiring)
    assert "cancelled at the broker with 0 filled" in timed_out["status_reason"]
    assert (cascaded["attempt"], cascaded["quantity"]) == (2, 1)
    assert [(c["fromBrokerId"], c["toBrokerId"]) for c in result["cascades"]] == [
        (timed_out["broker_id"], cascaded["broker_id"])
    ]
    assert result["status"] == "ROUTED"
    # AND once the cascaded child's fill is polled, the order is complete, never over-filled
    polled = poll_now(wiring)
    assert polled["recovered"] >= 1
    assert [c["status"] for c in children(wiring)] == ["CANCELLED", "FILLED"]
    assert filled(wiring) == 1
    assert order_status(wiring) == "COMPLETED"


def test_a_partial_fill_cancelled_after_a_timeout_sends_only_its_remainder(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a broker that fills 4 of 10, leaves the rest open and answers late; then one that fills
    kite.sim.script(
        Behaviour(outcome="partial", partial_fraction=0.4, fill_price=PRICE, ack_delay_s=LATE),
        Behaviour(fill_price=PRICE),
    )
    # WHEN an order for 10 is routed
    result = submit(10, "partial")
    # THEN the remainder of 6, and only it, went to the next broker
    first, second = (kite.sim.book.orders[i] for i in sorted(kite.sim.book.orders))
    assert (first.status, first.filled, second.quantity) == ("CANCELLED", 4, 6)
    assert [c["quantity"] for c in result["cascades"]] == [6]
    assert result["status"] == "ROUTED"
    # AND the order fills exactly 10 once everything is tracked and polled
    poll_now(wiring)
    assert filled(wiring) == 10
    assert order_status(wiring) == "COMPLETED"


def test_a_cancel_the_broker_refuses_holds_the_quantity_and_a_late_fill_is_polled(
    wiring: Wiring, kite: RunningSimulator, notifier: RecordingNotifier
) -> None:
    # GIVEN a late, open order whose cancel the broker answers with a server error
    use_client(wiring, kite, FailingCancels(kite.sim, kite.url, "server"))
    kite.sim.script(Behaviour(outcome="open", ack_delay_s=LATE))
    # WHEN an order is routed
    result = submit(1, "cancel-fails")
    # THEN nothing cascades: the child stays TIMED_OUT at its broker, with its order id
    [child] = children(wiring)
    assert child["status"] == "TIMED_OUT"
    assert "cancel unconfirmed" in child["status_reason"]
    assert child["broker_order_id"] in kite.sim.book.orders
    assert [c["toBrokerId"] for c in result["cascades"]] == [None]
    assert len(kite.sim.book.orders) == 1
    # WHEN the broker fills it later, and the reconcile run polls
    [booked] = kite.sim.book.orders.values()
    kite.sim.book._change(booked, status="COMPLETE", filled=1, average_price=PRICE)
    polled = poll_now(wiring)
    # THEN the late fill is recovered, and the order holds exactly its quantity
    assert (polled["polled"], polled["recovered"]) == (1, 2)
    [child] = children(wiring)
    assert (child["status"], child["filled_quantity"]) == ("FILLED", 1)
    assert order_status(wiring) == "COMPLETED"
    # AND the trader is not told of a possible over-fill: the quantity never moved on
    updates = [m for m in notifier.messages if m[1] == "EXECUTION_UPDATE"]
    assert updates
    assert {m[2]["lateAfterTimeout"] for m in updates} == {False}


def test_a_cancel_and_a_status_that_both_fail_cascade_nothing(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a late, open order whose cancel and the status read after it both fail
    use_client(wiring, kite, FailingCancels(kite.sim, kite.url, "server", "network"))
    kite.sim.script(Behaviour(outcome="open", ack_delay_s=LATE))
    # WHEN an order is routed
    result = submit(1, "blind")
    # THEN the quantity is held, with both reasons, and nothing went to another broker
    [child] = children(wiring)
    assert child["status"] == "TIMED_OUT"
    assert "cancel refused" in child["status_reason"]
    assert "NETWORK" in child["status_reason"]
    assert result["status"] == "REJECTED"
    assert len(kite.sim.book.orders) == 1


def test_a_crash_between_the_cancel_and_the_cascade_is_reconciled_without_over_filling(
    wiring: Wiring, kite: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a process that dies after cancelling a late order, before cascading its quantity
    kite.sim.script(Behaviour(outcome="open", ack_delay_s=LATE))

    def died(*args: Any, **kwargs: Any) -> Any:
        raise ProcessDied

    with monkeypatch.context() as crash:
        crash.setattr(ChildPlacer, "_cascade", died)
        with pytest.raises(ProcessDied):
            submit(1, "crash")
    [booked] = kite.sim.book.orders.values()
    assert booked.status == "CANCELLED"
    with wiring.database.connection() as conn:
        conn.execute("UPDATE orders SET created_at = created_at - interval '1 hour'")
    # WHEN the reconciler runs
    result = poll_now(wiring)
    # THEN the child takes the broker's state (cancelled), nothing is sent anywhere else
    assert (result["orders"], result["adopted"]) == (1, 1)
    [child] = children(wiring)
    assert (child["status"], child["broker_order_id"]) == ("CANCELLED", booked.order_id)
    assert len(kite.sim.book.orders) == 1
    assert filled(wiring) == 0
    # AND a retry of the key gets the final answer, without placing again
    status, body, _ = call(
        route_order,
        "POST",
        SMART,
        body={
            "symbol": "RELIANCE",
            "side": "BUY",
            "quantity": 1,
            "orderType": "MARKET",
            "clientOrderId": "crash",
        },
    )
    assert (status, body["replayed"]) == (200, True)
    assert len(kite.sim.book.orders) == 1
