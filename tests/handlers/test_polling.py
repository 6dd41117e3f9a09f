"""Reconciliation by polling, over real HTTP: postbacks and polls converge on one state, once.

A Kite broker row (checksum-signed postbacks) is served by the Kite simulator. Its postbacks are
taken from the simulator exactly as it signs them and delivered to the broker_webhook handler
when a test says so (withheld otherwise); the reconcile handler polls; every ExecutionReported
event in the outbox is then applied by the tracker, as track_execution does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from functions.broker_webhook import handler as webhook
from functions.reconcile import handler as reconcile
from local import seed
from local.apigw import LocalLambdaContext
from local.simulators import Behaviour, RunningSimulator, start_simulator
from shared.adapters.brokers.gateway import ClientGateway
from shared.adapters.brokers.kite import KiteClient
from shared.domain.broker_orders import BrokerAccount
from shared.domain.brokers import WebhookAuth
from shared.domain.contracts import WEBHOOK_PREFIX, DetailType
from shared.domain.execution import ExecutionReport
from shared.domain.models import Exchange, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.settings import Settings
from shared.wiring import Wiring, utc_now
from tests import factories
from tests.factories import broker
from tests.handlers.support import call

KITE_SECRET = "kite-api-secret-for-tests"
TOKEN = "kite-access-token"
ACCOUNT = BrokerAccount(
    account_id="platform", api_key="kite-api-key", access_token=SecretStr(TOKEN)
)
PRICE = Decimal("1296.05")
HOOK = f"{WEBHOOK_PREFIX}/kite"


@pytest.fixture
def app_settings(database_url: str, redis_url: str, redis_prefix: str) -> Settings:
    secrets = {**seed.webhook_secrets(), "kite/api": KITE_SECRET}
    return Settings(
        stage="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        broker_secrets_json=json.dumps(secrets),
        broker_timeout_ms=2000,
    )


@pytest.fixture
def kite(wiring: Wiring) -> Iterator[RunningSimulator]:
    """The Kite simulator behind broker ``kite``; it sends no postback by itself."""
    wiring.brokers.upsert(
        broker(
            "kite",
            adapter="kite",
            webhook_auth=WebhookAuth.KITE_CHECKSUM,
            webhook_secret_ref="kite/api",
        )
    )
    running = start_simulator(
        "kite",
        access_token=TOKEN,
        api_key="kite-api-key",
        api_secret=KITE_SECRET,
        postback_url=None,
    )
    running.sim.behaviour = Behaviour(fill_price=PRICE)
    wiring.gateway.register(
        "kite", ClientGateway("kite", KiteClient(running.url), lambda _user: ACCOUNT)
    )
    try:
        yield running
    finally:
        running.stop()


def stored_child(wiring: Wiring) -> ChildOrder:
    """A routed order's child for 75 at ``kite``, stored PENDING (as routing stores it)."""
    request = factories.order(quantity=75)
    child = ChildOrder(
        child_order_id=f"{request.order_id}-1",
        order_id=request.order_id,
        user_id=request.user_id,
        broker_id="kite",
        symbol="RELIANCE",
        exchange=Exchange.NSE,
        side=Side.BUY,
        quantity=75,
        order_type=request.order_type,
        product=request.product,
        expected_price=PRICE,
        placed_at=utc_now(),
    )
    wiring.orders.save_routed_order(
        request,
        request_hash="a" * 64,
        decision=factories.decision(request, {"kite": 75}),
        children=[child],
        events=[],
    )
    return child


def place(wiring: Wiring, child: ChildOrder) -> ChildOrder:
    """Place ``child`` at the simulator through the gateway; the placed child (not stored)."""
    result = wiring.gateway.place(child, timeout_s=2.0)
    assert result.status is ChildOrderStatus.PLACED, result.reason
    return child.model_copy(
        update={"status": ChildOrderStatus.PLACED, "broker_order_id": result.broker_order_id}
    )


def record(wiring: Wiring, placed: ChildOrder) -> None:
    wiring.orders.record_placements(placed.order_id, [placed], [], {"status": "ROUTED"})


def deliver_postback(kite: RunningSimulator, broker_order_id: str) -> dict[str, Any]:
    """The simulator's signed postback of the order's current state, through broker_webhook."""
    built = kite.sim.postback(kite.sim.book.orders[broker_order_id])
    assert built is not None
    body, headers = built
    status, answer, _ = call(webhook, "POST", HOOK, body=body, headers=headers, claims=None)
    assert status == 202, answer
    result: dict[str, Any] = answer
    return result


def rows(wiring: Wiring, sql: str, *params: Any) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        return list(conn.execute(sql, params).fetchall())


def poll(wiring: Wiring) -> dict[str, int]:
    """Age the children past the bound and run the reconcile handler."""
    with wiring.database.connection() as conn:
        conn.execute(
            "UPDATE child_orders SET placed_at = placed_at - interval '1 hour',"
            " polled_at = polled_at - interval '1 hour'"
        )
    result: dict[str, int] = reconcile.lambda_handler({}, LocalLambdaContext("reconcile", 60))
    return result


def track_outbox(wiring: Wiring) -> list[str]:
    """Apply every ExecutionReported in the outbox; return each report's outcome."""
    details = rows(
        wiring,
        "SELECT detail FROM event_outbox WHERE detail_type = %s ORDER BY id",
        DetailType.EXECUTION_REPORTED,
    )
    reports = [ExecutionReport.model_validate(r["detail"]["report"]) for r in details]
    return [o.status for o in wiring.tracker.track_batch(reports)] if reports else []


def the_child(wiring: Wiring) -> dict[str, Any]:
    [child] = rows(wiring, "SELECT status, filled_quantity, broker_order_id FROM child_orders")
    return child


def metrics_keys(wiring: Wiring) -> list[str]:
    return [r["report_key"] for r in rows(wiring, "SELECT report_key FROM execution_metrics")]


def test_a_withheld_postback_is_recovered_from_the_order_history(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a child the broker filled, whose postback never came
    placed = place(wiring, stored_child(wiring))
    record(wiring, placed)
    assert the_child(wiring)["status"] == "PLACED"
    # WHEN the reconcile run polls it
    result = poll(wiring)
    track_outbox(wiring)
    # THEN its history became the reports the postbacks would have been, applied once each
    assert (result["polled"], result["recovered"]) == (1, 2)
    order_id = placed.broker_order_id
    assert sorted(metrics_keys(wiring)) == [f"kite:{order_id}:FILLED:75", f"kite:{order_id}:OPEN:0"]
    assert (the_child(wiring)["status"], the_child(wiring)["filled_quantity"]) == ("FILLED", 75)
    # AND a settled child is not polled again
    assert poll(wiring)["polled"] == 0


def test_a_postback_and_a_poll_of_the_same_state_are_applied_once(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a filled child whose postback was accepted but not yet applied
    placed = place(wiring, stored_child(wiring))
    record(wiring, placed)
    assert placed.broker_order_id is not None
    assert deliver_postback(kite, placed.broker_order_id)["status"] == "accepted"
    # WHEN a poll publishes the same state before the tracker ran, then everything is applied
    result = poll(wiring)
    outcomes = track_outbox(wiring)
    # THEN the polled FILLED state is the very event the postback became (same content, same
    # event id: the outbox holds it once), and it is one metrics row: the fill counts once
    assert result["recovered"] == 2
    filled_key = f"kite:{placed.broker_order_id}:FILLED:75"
    events = rows(
        wiring,
        "SELECT detail->>'idempotency_key' AS k FROM event_outbox WHERE detail_type = %s",
        DetailType.EXECUTION_REPORTED,
    )
    assert sorted(e["k"] for e in events) == sorted(
        [filled_key, f"kite:{placed.broker_order_id}:OPEN:0"]
    )
    assert outcomes == ["recorded", "recorded"]
    assert metrics_keys(wiring).count(filled_key) == 1
    assert the_child(wiring)["filled_quantity"] == 75
    # AND the broker retrying the postback afterwards is a duplicate
    assert deliver_postback(kite, placed.broker_order_id)["status"] == "duplicate"


def test_a_postback_before_the_broker_order_id_is_stored_is_recovered_by_polling(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a child placed at the broker whose postback arrives before routing stored its id
    child = stored_child(wiring)
    placed = place(wiring, child)
    assert placed.broker_order_id is not None
    early = deliver_postback(kite, placed.broker_order_id)
    # THEN that postback matched no child (Kite's tag is a digest of our id)
    assert early["status"] == "ignored"
    # WHEN routing stores the id and the reconcile run polls
    record(wiring, placed)
    result = poll(wiring)
    track_outbox(wiring)
    # THEN the fill the early postback announced is applied, once
    assert result["recovered"] == 2
    assert (the_child(wiring)["status"], the_child(wiring)["filled_quantity"]) == ("FILLED", 75)
    assert metrics_keys(wiring).count(f"kite:{placed.broker_order_id}:FILLED:75") == 1


def test_a_broker_that_cannot_be_asked_leaves_the_child_for_the_next_run(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a placed child whose broker answers the poll with a server error
    kite.sim.behaviour = Behaviour(outcome="open", fill_price=PRICE)
    record(wiring, place(wiring, stored_child(wiring)))
    kite.sim.fail_next("server")
    # WHEN the reconcile run polls
    result = poll(wiring)
    # THEN nothing was published and the child is still working, to be polled again
    assert (result["polled"], result["unanswered"], result["recovered"]) == (1, 1, 0)
    assert the_child(wiring)["status"] == "PLACED"
    # AND the next run (past the bound) asks again and records the open state
    again = poll(wiring)
    track_outbox(wiring)
    assert (again["polled"], again["recovered"]) == (1, 1)
    assert the_child(wiring)["status"] == "PLACED"


def test_a_child_the_broker_never_booked_is_counted_not_found(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a child stored as timed out that never reached the broker
    child = stored_child(wiring)
    record(wiring, child.model_copy(update={"status": ChildOrderStatus.TIMED_OUT}))
    # WHEN the reconcile run polls
    result = poll(wiring)
    # THEN the broker's book has no order under its tag, and nothing is published
    assert (result["polled"], result["notFound"], result["recovered"]) == (1, 1, 0)
    assert the_child(wiring)["status"] == "TIMED_OUT"


def test_a_run_out_of_time_asks_no_broker_and_leaves_the_child_for_a_later_run(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a placed child past the bound
    record(wiring, place(wiring, stored_child(wiring)))
    with wiring.database.connection() as conn:
        conn.execute("UPDATE child_orders SET placed_at = placed_at - interval '1 hour'")
    calls = len(kite.sim.requests)
    poller = wiring.reconciler._poller
    assert poller is not None
    # WHEN a run starts with no time left
    result = poller.run(time_left_s=0)
    # THEN no broker was asked and nothing published; the child waits for a later run
    assert (result.polled, result.recovered) == (0, 0)
    assert len(kite.sim.requests) == calls
    assert the_child(wiring)["status"] == "PLACED"
