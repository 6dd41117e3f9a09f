"""Hostile broker webhooks: bad bytes are refused, impossible reports quarantined, none applied.

Every case asserts the status, the one error body shape (or the quarantine answer) and what the
database holds afterwards: nothing stored, or the report quarantined exactly once with its reason,
the metrics rows and the child unchanged. Real Postgres and Redis; moto only for EventBridge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from functions.broker_webhook import handler
from functions.track_execution import handler as tracker_handler
from local import cli, seed
from local.apigw import LocalLambdaContext
from shared.adapters.brokers.webhooks import compute_kite_checksum, sign_webhook
from shared.adapters.brokers.webhooks._parsing import MAX_BODY_BYTES
from shared.domain.brokers import WebhookAuth
from shared.domain.contracts import WEBHOOK_PREFIX, DetailType
from shared.domain.execution import ExecutionReport
from shared.domain.models import Exchange, OrderType, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.settings import Settings
from shared.wiring import Wiring
from tests import factories
from tests.handlers.support import EventSink, call
from tests.handlers.test_track_execution import msk_batch

KITE_SECRET = "kite-api-secret-for-hostile-tests"
UPSTOX_TOKEN = "upstox-path-token-hostile-0123456789"
HOOKS = WEBHOOK_PREFIX
ZERODHA_SECRET = seed.webhook_secrets()["zerodha/webhook"]
PLACED_AT = factories.NOW


@pytest.fixture
def app_settings(database_url: str, redis_url: str, redis_prefix: str) -> Settings:
    secrets = {**seed.webhook_secrets(), "kite/api": KITE_SECRET, "upstox/token": UPSTOX_TOKEN}
    return Settings(
        stage="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        broker_secrets_json=json.dumps(secrets),
    )


def routed(
    wiring: Wiring,
    *,
    brokers: tuple[str, ...] = ("zerodha",),
    quantity: int = 100,
    limit_price: Decimal | None = None,
) -> list[ChildOrder]:
    """An order of ``quantity`` with one placed child of ``quantity`` per broker, in order:
    the second and later are cascades (attempt 2, 3...) of the first."""
    request = factories.order(
        quantity=quantity,
        order_type=OrderType.LIMIT if limit_price else OrderType.MARKET,
        limit_price=limit_price,
    )
    routing = factories.decision(request, {brokers[0]: quantity})
    kids = [
        ChildOrder(
            child_order_id=f"{request.order_id}-{n}",
            order_id=request.order_id,
            user_id=request.user_id,
            broker_id=broker_id,
            symbol="RELIANCE",
            exchange=Exchange.NSE,
            side=Side.BUY,
            quantity=quantity,
            order_type=request.order_type,
            product=request.product,
            limit_price=limit_price,
            expected_price=Decimal("1295.50"),
            arrival_bid=Decimal("1295.00"),
            arrival_ask=Decimal("1295.50"),
            attempt=n,
            placed_at=PLACED_AT,
        )
        for n, broker_id in enumerate(brokers, start=1)
    ]
    wiring.orders.save_routed_order(
        request, request_hash="a" * 64, decision=routing, children=kids, events=[]
    )
    placed = [
        k.model_copy(
            update={"status": ChildOrderStatus.PLACED, "broker_order_id": f"B-{k.child_order_id}"}
        )
        for k in kids
    ]
    wiring.orders.record_placements(request.order_id, placed, [], {"status": "ROUTED"})
    return placed


def generic(child: ChildOrder, **changes: Any) -> dict[str, Any]:
    """Our generic report of ``child`` completely filled at 1296.00, one second after placing."""
    body: dict[str, Any] = {
        "brokerId": child.broker_id,
        "brokerOrderId": child.broker_order_id,
        "childOrderId": child.child_order_id,
        "status": "FILLED",
        "quantity": child.quantity,
        "filledQuantity": child.quantity,
        "averagePrice": "1296.00",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "side": "BUY",
        "timestamp": (PLACED_AT + timedelta(seconds=1)).isoformat(),
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not DROP}


DROP = object()


def signed_post(broker_id: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
    secret = seed.webhook_secrets()[f"{broker_id}/webhook"]
    headers = sign_webhook(raw, secret, timestamp=int(time.time()))
    return call(handler, "POST", f"{HOOKS}/{broker_id}", body=raw, headers=headers, claims=None)


def post_report(body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    return signed_post(body["brokerId"], json.dumps(body).encode())


def rows(wiring: Wiring, sql: str) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        return conn.execute(sql).fetchall()


def snapshot(wiring: Wiring) -> dict[str, Any]:
    """What a hostile report could have changed."""
    return {
        "metrics": rows(wiring, "SELECT report_key, filled_quantity FROM execution_metrics"),
        "children": rows(
            wiring,
            "SELECT child_order_id, status, filled_quantity, average_price, broker_order_id "
            "FROM child_orders ORDER BY child_order_id",
        ),
        "orders": rows(wiring, "SELECT order_id, status FROM orders ORDER BY order_id"),
        "outbox": rows(wiring, "SELECT event_id FROM event_outbox"),
        "profiles": rows(
            wiring,
            "SELECT broker_id, symbol, sample_count FROM broker_execution_profiles "
            "ORDER BY broker_id, symbol",
        ),
    }


def quarantined(wiring: Wiring) -> list[dict[str, Any]]:
    return rows(
        wiring,
        "SELECT reason, field, stage, broker_id, child_order_id, order_id, report_key, report "
        "FROM quarantined_reports ORDER BY id",
    )


def assert_error(status: int, answer: Any, expected: int, field: str | None = None) -> None:
    assert status == expected
    assert set(answer) == {"error"}
    assert {"code", "message"} <= set(answer["error"])
    if field is not None:
        assert answer["error"]["field"] == field


def track_published(aws: EventSink) -> dict[str, Any]:
    """Feed every ExecutionReported event on the bus to track_execution as one MSK batch."""
    events = [e for e in aws.drain() if e["detail-type"] == DetailType.EXECUTION_REPORTED]
    values = [
        json.dumps({"detail-type": e["detail-type"], "detail": e["detail"]}).encode()
        for e in events
    ]
    result: dict[str, Any] = tracker_handler.lambda_handler(
        msk_batch(values), LocalLambdaContext("test")
    )
    return result


# --------------------------------------------------------------------------------------------
# Bytes that are not a report: 400 in the one error shape, nothing stored


@pytest.fixture
def kite(wiring: Wiring) -> ChildOrder:
    wiring.brokers.upsert(
        factories.broker(
            "kite",
            adapter="kite",
            webhook_auth=WebhookAuth.KITE_CHECKSUM,
            webhook_secret_ref="kite/api",
        )
    )
    [child] = routed(wiring, brokers=("kite",))
    return child


@pytest.fixture
def upstox(wiring: Wiring) -> ChildOrder:
    wiring.brokers.upsert(
        factories.broker(
            "upstox-live",
            adapter="upstox",
            webhook_auth=WebhookAuth.PATH_TOKEN,
            webhook_secret_ref="upstox/token",
        )
    )
    [child] = routed(wiring, brokers=("upstox-live",))
    return child


def kite_postback(child: ChildOrder, **changes: Any) -> dict[str, Any]:
    order_id, stamp = child.broker_order_id or "", "2026-11-25 15:00:01"
    body = {
        "order_id": order_id,
        "order_timestamp": stamp,
        "exchange_timestamp": stamp,
        "checksum": compute_kite_checksum(order_id, stamp, KITE_SECRET),
        "status": "COMPLETE",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "quantity": child.quantity,
        "filled_quantity": child.quantity,
        "average_price": 1296.05,
        "tag": child.child_order_id,
    }
    body.update(changes)
    return body


def nested(depth: int) -> bytes:
    return b'{"order_id": ' + b"[" * depth + b"]" * depth + b"}"


RouteCall = Callable[[bytes], tuple[int, Any, dict[str, str]]]


def _routes(kite: ChildOrder, upstox: ChildOrder) -> dict[str, RouteCall]:
    return {
        "hmac": lambda raw: signed_post("zerodha", raw),
        "kite-checksum": lambda raw: call(handler, "POST", f"{HOOKS}/kite", body=raw, claims=None),
        "path-token": lambda raw: call(
            handler, "POST", f"{HOOKS}/upstox-live/{UPSTOX_TOKEN}", body=raw, claims=None
        ),
    }


BAD_BODIES: dict[str, bytes] = {
    "not UTF-8": b"\xa5",
    "UTF-8 then a stray byte": b'{"status": "COMPLETE\xff"}',
    "nested 5,000 deep": nested(5000),
    "nested 17 deep": nested(17),
    "strings hide no brackets, depth still counted": b'{"a": "[[[[", "b": '
    + b"[" * 40
    + b"]" * 40
    + b"}",
    "larger than the bound": b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}',
    "not JSON": b"{order_id: 1",
    "NaN constant": b'{"quantity": NaN}',
    "an integer of 5,000 digits": b'{"quantity": ' + b"9" * 5000 + b"}",
    "a JSON array": b"[1, 2]",
    "empty": b"",
}


@pytest.mark.parametrize("route", ["hmac", "kite-checksum", "path-token"])
@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bytes_that_are_not_a_report_are_400_on_every_scheme(
    wiring: Wiring, kite: ChildOrder, upstox: ChildOrder, route: str, case: str
) -> None:
    # GIVEN a body that is not a readable JSON object (signed where the scheme signs bytes)
    before = snapshot(wiring)
    # WHEN it reaches the webhook of each authentication scheme
    status, answer, _ = _routes(kite, upstox)[route](BAD_BODIES[case])
    # THEN 400 names the body, in the one error shape, and nothing is stored or quarantined
    assert_error(status, answer, 400, field="body")
    assert snapshot(wiring) == before
    assert quarantined(wiring) == []


def test_a_deep_body_with_a_forged_checksum_is_refused_without_recursion(
    wiring: Wiring, kite: ChildOrder
) -> None:
    # GIVEN a Kite body nested 100,000 deep (no valid checksum could be in it)
    raw = nested(100_000)
    # WHEN it arrives
    status, answer, _ = call(handler, "POST", f"{HOOKS}/kite", body=raw, claims=None)
    # THEN it is refused as a body before any parser recursed into it
    assert_error(status, answer, 400, field="body")
    assert quarantined(wiring) == []


MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "quantity a word": ({"quantity": "abc"}, "quantity"),
    "filledQuantity a boolean": ({"filledQuantity": True}, "filledQuantity"),
    "filledQuantity a fraction": ({"filledQuantity": 99.5}, "filledQuantity"),
    "averagePrice NaN": ({"averagePrice": "NaN"}, "averagePrice"),
    "averagePrice Infinity": ({"averagePrice": "Infinity"}, "averagePrice"),
    "averagePrice an object": ({"averagePrice": {"v": 1}}, "averagePrice"),
    "averagePrice missing with fills": ({"averagePrice": DROP}, "averagePrice"),
    "side missing": ({"side": DROP}, "side"),
    "side sideways": ({"side": "HOLD"}, "side"),
    "status unknown": ({"status": "DONE-ISH"}, "status"),
    "symbol not a symbol": ({"symbol": "RELIANCE; DROP TABLE"}, "symbol"),
    "timestamp without offset": ({"timestamp": "2026-11-25T09:30:01"}, "timestamp"),
    "timestamp not a time": ({"timestamp": "yesterday"}, "timestamp"),
    "brokerOrderId missing": ({"brokerOrderId": DROP}, "brokerOrderId"),
    "brokerOrderId too long": ({"brokerOrderId": "x" * 65}, "brokerOrderId"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_reports_are_400_naming_the_field(wiring: Wiring, case: str) -> None:
    # GIVEN a signed report with one field of the wrong type or missing
    [child] = routed(wiring)
    changes, field = MALFORMED[case]
    before = snapshot(wiring)
    # WHEN it arrives
    status, answer, _ = post_report(generic(child, **changes))
    # THEN 400 names the field and nothing is stored or quarantined
    assert_error(status, answer, 400, field=field)
    assert snapshot(wiring) == before
    assert quarantined(wiring) == []


# --------------------------------------------------------------------------------------------
# Well formed and authenticated, but impossible for the child: quarantined, never applied

FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()

IMPOSSIBLE: dict[str, tuple[dict[str, Any], str, str]] = {
    "101 of a 100-share child": (
        {"quantity": 101, "filledQuantity": 101},
        "OVERFILL",
        "filledQuantity",
    ),
    "1,000 of a 100-share child": (
        {"quantity": 1000, "filledQuantity": 1000},
        "OVERFILL",
        "filledQuantity",
    ),
    "10^30 shares": ({"quantity": 10**30, "filledQuantity": 10**30}, "OVERFILL", "filledQuantity"),
    "more ordered than sent": (
        {"quantity": 150, "filledQuantity": 60, "status": "PARTIALLY_FILLED"},
        "QUANTITY_MISMATCH",
        "quantity",
    ),
    "101 filled of its own 100": ({"filledQuantity": 101}, "IMPOSSIBLE_REPORT", "filledQuantity"),
    "negative fill": (
        {"filledQuantity": -5, "status": "OPEN", "averagePrice": DROP},
        "IMPOSSIBLE_REPORT",
        "filledQuantity",
    ),
    "zero price": ({"averagePrice": "0"}, "IMPOSSIBLE_REPORT", "averagePrice"),
    "FILLED with half": ({"filledQuantity": 50}, "IMPOSSIBLE_REPORT", "status"),
    "another symbol": ({"symbol": "TCS"}, "SYMBOL_MISMATCH", "symbol"),
    "another exchange": ({"exchange": "BSE"}, "EXCHANGE_MISMATCH", "exchange"),
    "the opposite side": ({"side": "SELL"}, "SIDE_MISMATCH", "side"),
    "another broker order id": (
        {"brokerOrderId": "B-someone-else"},
        "BROKER_ORDER_MISMATCH",
        "brokerOrderId",
    ),
    "average 1e400": ({"averagePrice": "1e400"}, "PRICE_OUT_OF_BAND", "averagePrice"),
    "average 1e400 as a number": (
        {"averagePrice": Decimal("1E+400")},
        "PRICE_OUT_OF_BAND",
        "averagePrice",
    ),
    "ten times the price": ({"averagePrice": "12960.00"}, "PRICE_OUT_OF_BAND", "averagePrice"),
    "30 % under the market": ({"averagePrice": "906.85"}, "PRICE_OUT_OF_BAND", "averagePrice"),
    "a tenth of the price": ({"averagePrice": "129.60"}, "PRICE_OUT_OF_BAND", "averagePrice"),
    "an hour before the order": (
        {"timestamp": (PLACED_AT - timedelta(hours=1)).isoformat()},
        "EVENT_BEFORE_ORDER",
        "eventTime",
    ),
    "a day in the future": ({"timestamp": FUTURE}, "EVENT_IN_FUTURE", "eventTime"),
}


def _encode(body: dict[str, Any]) -> bytes:
    # Decimal("1E+400") as a bare JSON number, as a hostile sender would write it.
    return json.dumps(body, default=lambda d: float("inf")).replace("Infinity", "1E+400").encode()


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_impossible_reports_are_quarantined_once_and_never_applied(
    wiring: Wiring, aws: EventSink, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    # GIVEN a placed 100-share child and a signed, well-formed report that cannot be true of it
    [child] = routed(wiring)
    changes, reason, field = IMPOSSIBLE[case]
    raw = _encode(generic(child, **changes))
    before = snapshot(wiring)
    capsys.readouterr()
    # WHEN it arrives, and the broker sends it again
    first = signed_post("zerodha", raw)
    second = signed_post("zerodha", raw)
    # THEN both answer 202 "quarantined" with the reason (the broker stops retrying)
    for status, answer, _ in (first, second):
        assert status == 202
        assert answer["status"] == "quarantined"
        assert answer["quarantine"]["reason"] == reason
        assert answer["quarantine"]["field"] == field
        assert answer["quarantine"]["message"]
    # AND it is held exactly once with its reason, child and key; nothing else changed and
    # nothing reached the bus
    [held] = quarantined(wiring)
    assert (held["reason"], held["field"], held["stage"]) == (reason, field, "webhook")
    assert (held["broker_id"], held["order_id"]) == ("zerodha", child.order_id)
    assert held["child_order_id"] == child.child_order_id
    assert held["report_key"] == first[1]["idempotencyKey"]
    assert held["report"]["childOrderId"] == child.child_order_id
    assert snapshot(wiring) == before
    assert aws.drain() == []
    # AND each quarantine was counted by reason, and by service for the alarm
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    by_reason = [e for e in emitted if e.get("reason") == reason and "QuarantinedReports" in e]
    assert len(by_reason) == 2
    assert sum(len(e["QuarantinedReports"]) for e in emitted if "QuarantinedReports" in e) == 4


def test_a_report_naming_another_brokers_child_is_quarantined(wiring: Wiring) -> None:
    # GIVEN a child sent to upstox, and zerodha (authenticated) claiming it
    [child] = routed(wiring, brokers=("upstox",))
    before = snapshot(wiring)
    # WHEN zerodha reports a fill of it
    status, answer, _ = post_report(generic(child, brokerId="zerodha"))
    # THEN it is quarantined as a broker mismatch and upstox's child is untouched
    assert (status, answer["status"], answer["quarantine"]["reason"]) == (
        202,
        "quarantined",
        "BROKER_MISMATCH",
    )
    assert [h["child_order_id"] for h in quarantined(wiring)] == [child.child_order_id]
    assert snapshot(wiring) == before


def test_a_limit_buy_filled_above_its_limit_is_quarantined(wiring: Wiring) -> None:
    # GIVEN a LIMIT buy child at 1296.00
    [child] = routed(wiring, limit_price=Decimal("1296.00"))
    # WHEN the broker reports it filled at 1296.01 (within rounding) and at 1297.00
    rounding = post_report(generic(child, averagePrice="1296.01"))
    beyond = post_report(
        generic(child, averagePrice="1297.00", status="PARTIALLY_FILLED", filledQuantity=50)
    )
    # THEN the paisa of rounding passes and the fill beyond the limit is quarantined
    assert rounding[1]["status"] == "accepted"
    assert beyond[1]["quarantine"]["reason"] == "LIMIT_PRICE_VIOLATED"


def test_a_fill_on_a_rejected_child_and_a_final_status_undoing_fills_are_quarantined(
    wiring: Wiring, aws: EventSink
) -> None:
    # GIVEN one child the broker rejected and one that is 60 filled, both applied
    rejected, partial = routed(wiring), routed(wiring)
    post_report(generic(rejected[0], status="REJECTED", filledQuantity=0, averagePrice=DROP))
    post_report(generic(partial[0], status="PARTIALLY_FILLED", filledQuantity=60))
    assert track_published(aws)["batchItemFailures"] == []
    before = snapshot(wiring)
    # WHEN the rejected child is reported filled, and the other cancelled at 40
    fill = post_report(generic(rejected[0]))
    regress = post_report(generic(partial[0], status="CANCELLED", filledQuantity=40))
    # THEN both are quarantined and neither child moved
    assert fill[1]["quarantine"]["reason"] == "FILL_AFTER_CLOSE"
    assert regress[1]["quarantine"]["reason"] == "FILL_REGRESSION"
    assert snapshot(wiring) == before
    # AND a late working report behind the recorded fill is still accepted (reports arrive
    # out of order), adding nothing
    late = post_report(generic(partial[0], status="PARTIALLY_FILLED", filledQuantity=30))
    assert late[1]["status"] == "accepted"


def test_a_kite_postback_filling_101_of_100_is_quarantined(
    wiring: Wiring, aws: EventSink, kite: ChildOrder
) -> None:
    # GIVEN a correctly signed Kite postback claiming 101 of a 100-share child
    body = kite_postback(kite, quantity=100, filled_quantity=101)
    before = snapshot(wiring)
    # WHEN it arrives
    status, answer, _ = call(handler, "POST", f"{HOOKS}/kite", body=body, claims=None)
    # THEN it is quarantined (its figures contradict each other) and nothing is applied
    assert (status, answer["status"]) == (202, "quarantined")
    [held] = quarantined(wiring)
    assert (held["reason"], held["child_order_id"]) == ("IMPOSSIBLE_REPORT", kite.child_order_id)
    assert snapshot(wiring) == before
    assert aws.drain() == []


def test_an_upstox_update_on_the_opposite_side_is_quarantined(
    wiring: Wiring, upstox: ChildOrder
) -> None:
    # GIVEN an Upstox update (path token) selling what the child bought
    body = {
        "update_type": "order",
        "exchange": "NSE",
        "trading_symbol": "RELIANCE-EQ",
        "average_price": 1296.1,
        "quantity": 100,
        "filled_quantity": 100,
        "transaction_type": "SELL",
        "status": "complete",
        "tag": upstox.child_order_id,
        "order_id": upstox.broker_order_id,
        "exchange_timestamp": "2026-11-25 15:00:01",
        "order_timestamp": "2026-11-25 15:00:00",
    }
    # WHEN it arrives
    status, answer, _ = call(
        handler, "POST", f"{HOOKS}/upstox-live/{UPSTOX_TOKEN}", body=body, claims=None
    )
    # THEN it is quarantined as the wrong side
    assert (status, answer["quarantine"]["reason"]) == (202, "SIDE_MISMATCH")


# --------------------------------------------------------------------------------------------
# A key is used only once its report is applied


def test_a_resend_whose_earlier_copy_was_never_applied_goes_through(
    wiring: Wiring, aws: EventSink
) -> None:
    # GIVEN a fill accepted by the webhook whose event then never got applied (it failed in
    # tracking until it was dead-lettered)
    [child] = routed(wiring)
    body = generic(child)
    first = post_report(body)
    lost = [e for e in aws.drain() if e["detail-type"] == DetailType.EXECUTION_REPORTED]
    aws.seen.clear()
    # WHEN the broker resends the same report
    second = post_report(body)
    result = track_published(aws)
    # THEN it is accepted again (its key was never used), tracked, and stored exactly once
    assert (first[1]["status"], second[1]["status"]) == ("accepted", "accepted")
    assert len(lost) == 1
    assert result["batchItemFailures"] == []
    [metric] = rows(wiring, "SELECT report_key, filled_quantity FROM execution_metrics")
    assert metric == {"report_key": first[1]["idempotencyKey"], "filled_quantity": 100}
    # AND once applied, a further copy is a duplicate that publishes nothing
    seen = len(aws.drain())
    third = post_report(body)
    assert third[1]["status"] == "duplicate"
    assert len(aws.drain()) == seen
    assert len(rows(wiring, "SELECT id FROM execution_metrics")) == 1


def test_a_correction_with_the_key_of_a_quarantined_report_is_applied(
    wiring: Wiring, aws: EventSink
) -> None:
    # GIVEN a fill quarantined for an absurd price
    [child] = routed(wiring)
    bad = post_report(generic(child, averagePrice="12960.00"))
    # WHEN the broker sends the corrected report (same broker order, status and quantity, so
    # the same idempotency key)
    good = post_report(generic(child))
    result = track_published(aws)
    # THEN the correction is accepted and applied once; the bad copy stays quarantined
    assert bad[1]["idempotencyKey"] == good[1]["idempotencyKey"]
    assert (bad[1]["status"], good[1]["status"]) == ("quarantined", "accepted")
    assert result["batchItemFailures"] == []
    [metric] = rows(wiring, "SELECT fill_price FROM execution_metrics")
    assert metric["fill_price"] == Decimal("1296.0000")
    assert [h["reason"] for h in quarantined(wiring)] == ["PRICE_OUT_OF_BAND"]


# --------------------------------------------------------------------------------------------
# Validated again at apply time


def test_two_reports_that_each_fit_but_together_overfill_are_caught_at_tracking(
    wiring: Wiring, aws: EventSink
) -> None:
    # GIVEN an order of 100 whose zerodha child was cascaded to upstox, and upstox's fill of
    # the whole order applied
    first, cascade = routed(wiring, brokers=("zerodha", "upstox"))
    post_report(generic(cascade))
    assert track_published(aws)["batchItemFailures"] == []
    aws.seen.clear()
    # AND zerodha's rejection and then a fill of the same child, each of which fits the child
    # as it stands when the webhook sees it
    rejection = post_report(generic(first, status="REJECTED", filledQuantity=0, averagePrice=DROP))
    fill = post_report(generic(first))
    assert (rejection[1]["status"], fill[1]["status"]) == ("accepted", "accepted")
    # WHEN the tracker applies both in one batch
    result = track_published(aws)
    # THEN nothing fails (nothing is dead-lettered): the rejection is applied, the fill on the
    # rejected child is quarantined in the batch's transaction, and the order is not over-filled
    assert result["batchItemFailures"] == []
    [held] = quarantined(wiring)
    assert (held["reason"], held["stage"], held["child_order_id"]) == (
        "FILL_AFTER_CLOSE",
        "tracking",
        first.child_order_id,
    )
    assert held["report_key"] == fill[1]["idempotencyKey"]
    children = rows(wiring, "SELECT status, filled_quantity FROM child_orders ORDER BY attempt")
    assert children == [
        {"status": "REJECTED", "filled_quantity": 0},
        {"status": "FILLED", "filled_quantity": 100},
    ]
    [order] = rows(wiring, "SELECT status FROM orders")
    assert order["status"] == "COMPLETED"
    assert len(rows(wiring, "SELECT id FROM execution_metrics")) == 2
    # AND the same batch delivered again quarantines nothing twice
    events = [e for e in aws.seen if e["detail-type"] == DetailType.EXECUTION_REPORTED]
    values = [
        json.dumps({"detail-type": e["detail-type"], "detail": e["detail"]}).encode()
        for e in events
    ]
    again = tracker_handler.lambda_handler(msk_batch(values), LocalLambdaContext("test"))
    assert again["batchItemFailures"] == []
    assert len(quarantined(wiring)) == 1


def test_a_forged_bus_event_is_quarantined_by_the_tracker(wiring: Wiring) -> None:
    # GIVEN an ExecutionReported event that never went through the webhook, reporting the
    # child at ten times its price
    [child] = routed(wiring)
    fields = generic(child, averagePrice="12960.00")
    fields["eventTime"] = fields.pop("timestamp")
    report = ExecutionReport.model_validate(fields)
    # WHEN the tracker handles it
    tracked = wiring.tracker.track(report)
    # THEN it is quarantined, not applied
    assert (tracked.status, tracked.reason) == ("quarantined", "PRICE_OUT_OF_BAND")
    assert rows(wiring, "SELECT id FROM execution_metrics") == []
    [stored] = rows(wiring, "SELECT status, filled_quantity FROM child_orders")
    assert stored == {"status": "PLACED", "filled_quantity": 0}


# --------------------------------------------------------------------------------------------
# The database refuses impossible states whatever code path tries to store them


def commit(wiring: Wiring, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Run statements in one transaction (deferred constraints are checked at its commit)."""
    with wiring.database.connection() as conn:
        for sql, params in statements:
            conn.execute(sql, params)


IMPOSSIBLE_UPDATES = {
    "child filled beyond its quantity": (
        "UPDATE child_orders SET filled_quantity = 101, average_price = 1296",
        "ck_child_orders_filled_within_quantity",
    ),
    "negative fill": (
        "UPDATE child_orders SET filled_quantity = -1",
        "child_orders_filled_quantity_check",
    ),
    "fill without a price": (
        "UPDATE child_orders SET filled_quantity = 10",
        "ck_child_orders_average_iff_filled",
    ),
    "negative average price": (
        "UPDATE child_orders SET filled_quantity = 10, average_price = -1",
        "ck_child_orders_average_price",
    ),
    "zero limit price on the order": (
        "UPDATE orders SET limit_price = 0",
        "ck_orders_limit_price",
    ),
    "negative expected price": (
        "UPDATE child_orders SET expected_price = -5",
        "ck_child_orders_prices",
    ),
}


@pytest.mark.parametrize("case", list(IMPOSSIBLE_UPDATES))
def test_constraints_refuse_a_direct_impossible_update(wiring: Wiring, case: str) -> None:
    # GIVEN a placed child
    routed(wiring)
    before = snapshot(wiring)
    sql, constraint = IMPOSSIBLE_UPDATES[case]
    # WHEN a statement tries to store an impossible state
    # THEN Postgres refuses it, naming the constraint, and nothing changed
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        commit(wiring, (sql, ()))
    assert refused.value.diag.constraint_name == constraint
    assert snapshot(wiring) == before


def test_constraints_refuse_negative_metrics(wiring: Wiring, aws: EventSink) -> None:
    # GIVEN an applied fill
    [child] = routed(wiring)
    post_report(generic(child))
    track_published(aws)
    # WHEN a statement makes its metrics negative
    # THEN each is refused
    for sql in (
        "UPDATE execution_metrics SET filled_quantity = -1",
        "UPDATE execution_metrics SET fill_price = 0",
        "UPDATE execution_metrics SET charges_inr = -0.01",
        "UPDATE execution_metrics SET execution_latency_ms = -1",
        "UPDATE execution_metrics SET fill_rate = 100.01",
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            commit(wiring, (sql, ()))


def test_an_order_holds_more_than_its_quantity_only_after_a_cascade_marked_overfilled(
    wiring: Wiring,
) -> None:
    # GIVEN an order of 100 split by hand over two first-attempt children, and a cascaded one
    plain = routed(wiring, brokers=("zerodha", "upstox"), quantity=100)
    with wiring.database.connection() as conn:
        conn.execute(
            "UPDATE child_orders SET attempt = 1 WHERE order_id = %s", (plain[0].order_id,)
        )
    cascaded = routed(wiring, brokers=("zerodha", "upstox"), quantity=100)
    fill_both = (
        "UPDATE child_orders SET filled_quantity = quantity, average_price = 1296, "
        "status = 'FILLED' WHERE order_id = %s"
    )
    overfilled = "UPDATE orders SET status = 'OVERFILLED' WHERE order_id = %s"
    # WHEN both children of each order are filled (200 of 100) in one transaction
    # THEN without a cascade it is refused at commit even when the order says OVERFILLED
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        commit(wiring, (fill_both, (plain[0].order_id,)), (overfilled, (plain[0].order_id,)))
    assert refused.value.diag.constraint_name == "ck_orders_fill_within_quantity"
    # AND with a cascade it is refused unless the order says OVERFILLED
    with pytest.raises(psycopg.errors.CheckViolation):
        commit(wiring, (fill_both, (cascaded[0].order_id,)))
    commit(wiring, (fill_both, (cascaded[0].order_id,)), (overfilled, (cascaded[0].order_id,)))
    # AND once over-filled it cannot quietly stop saying so
    with pytest.raises(psycopg.errors.CheckViolation):
        commit(
            wiring,
            ("UPDATE orders SET status = 'COMPLETED' WHERE order_id = %s", (cascaded[0].order_id,)),
        )
    statuses = rows(wiring, "SELECT status FROM orders ORDER BY status")
    assert [r["status"] for r in statuses] == ["OVERFILLED", "ROUTED"]


# --------------------------------------------------------------------------------------------
# An operator lists what is held


def test_the_cli_lists_quarantined_reports_newest_first_by_reason(
    wiring: Wiring, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN three quarantined reports of two reasons
    [child] = routed(wiring)
    post_report(generic(child, symbol="TCS"))
    post_report(generic(child, quantity=1000, filledQuantity=1000))
    post_report(generic(child, quantity=101, filledQuantity=101))
    assert wiring.settings.database_url is not None
    url = wiring.settings.database_url.get_secret_value()
    capsys.readouterr()
    # WHEN an operator lists the over-fills, then everything, then asks for a made-up reason
    overfills = cli.main(["quarantine", "--database-url", url, "--reason", "OVERFILL"])
    listed = json.loads(capsys.readouterr().out)
    everything = cli.main(["quarantine", "--database-url", url, "--limit", "10"])
    every = json.loads(capsys.readouterr().out)
    unknown = cli.main(["quarantine", "--database-url", url, "--reason", "NOPE"])
    # THEN the over-fills come newest first with their reason, message and report
    assert (overfills, everything, unknown) == (0, 0, 2)
    assert [r["report"]["filledQuantity"] for r in listed] == [101, 1000]
    assert {r["reason"] for r in listed} == {"OVERFILL"}
    assert all(r["childOrderId"] == child.child_order_id and r["message"] for r in listed)
    assert [r["reason"] for r in every] == ["OVERFILL", "OVERFILL", "SYMBOL_MISMATCH"]
    assert "unknown reason 'NOPE'; one of IMPOSSIBLE_REPORT" in capsys.readouterr().err
