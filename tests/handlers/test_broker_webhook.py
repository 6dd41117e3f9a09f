"""broker_webhook: per-broker verification, normalisation and exactly one event per report."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from functions.broker_webhook import handler
from local import seed
from shared.adapters.brokers.webhooks import compute_kite_checksum, sign_webhook
from shared.domain.brokers import WebhookAuth
from shared.domain.contracts import WEBHOOK_PREFIX, DetailType
from shared.domain.execution import ExecutionReport
from shared.domain.models import Exchange, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.settings import Settings
from shared.wiring import Wiring
from tests import factories
from tests.factories import broker
from tests.handlers.support import EventSink, call

KITE_SECRET = "kite-api-secret-for-tests"
UPSTOX_TOKEN = "upstox-path-token-0123456789"
HOOKS = WEBHOOK_PREFIX


@pytest.fixture
def app_settings(database_url: str, redis_url: str, redis_prefix: str) -> Settings:
    secrets = {
        **seed.webhook_secrets(),
        "kite/api": KITE_SECRET,
        "upstox/token": [UPSTOX_TOKEN],
    }
    return Settings(
        stage="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        broker_secrets_json=json.dumps(secrets),
    )


def placed_child(wiring: Wiring, broker_id: str, broker_order_id: str) -> ChildOrder:
    request = factories.order(quantity=75)
    routing = factories.decision(request, {broker_id: 75})
    child = ChildOrder(
        child_order_id=f"{request.order_id}-1",
        order_id=request.order_id,
        user_id=request.user_id,
        broker_id=broker_id,
        symbol="RELIANCE",
        exchange=Exchange.NSE,
        side=Side.BUY,
        quantity=75,
        order_type=request.order_type,
        product=request.product,
        expected_price=Decimal("1295.50"),
        placed_at=factories.NOW,
    )
    wiring.orders.save_routed_order(
        request, request_hash="a" * 64, decision=routing, children=[child], events=[]
    )
    placed = child.model_copy(
        update={"status": ChildOrderStatus.PLACED, "broker_order_id": broker_order_id}
    )
    wiring.orders.record_placements(request.order_id, [placed], [], {"status": "ROUTED"})
    return placed


@pytest.fixture
def kite(wiring: Wiring) -> ChildOrder:
    wiring.brokers.upsert(
        broker(
            "kite",
            adapter="kite",
            webhook_auth=WebhookAuth.KITE_CHECKSUM,
            webhook_secret_ref="kite/api",
        )
    )
    return placed_child(wiring, "kite", "220531000000001")


@pytest.fixture
def upstox(wiring: Wiring) -> ChildOrder:
    wiring.brokers.upsert(
        broker(
            "upstox-live",
            adapter="upstox",
            webhook_auth=WebhookAuth.PATH_TOKEN,
            webhook_secret_ref="upstox/token",
        )
    )
    return placed_child(wiring, "upstox-live", "231019025057432")


def kite_postback(child: ChildOrder, *, secret: str = KITE_SECRET) -> dict[str, Any]:
    order_id, stamp = child.broker_order_id or "", "2026-11-25 15:00:00"
    return {
        "user_id": "AB1234",
        "unfilled_quantity": 0,
        "app_id": 1234,
        "checksum": compute_kite_checksum(order_id, stamp, secret),
        "placed_by": "AB1234",
        "order_id": order_id,
        "exchange_order_id": "1300000001887410",
        "status": "COMPLETE",
        "status_message": None,
        "order_timestamp": stamp,
        "exchange_timestamp": stamp,
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "order_type": "MARKET",
        "transaction_type": "BUY",
        "validity": "DAY",
        "product": "CNC",
        "quantity": 75,
        "disclosed_quantity": 0,
        "price": 0,
        "trigger_price": 0,
        "average_price": 1296.05,
        "filled_quantity": 75,
        "pending_quantity": 0,
        "cancelled_quantity": 0,
        "tag": child.child_order_id,
        "guid": "XXXXXX",
    }


def upstox_update(child: ChildOrder) -> dict[str, Any]:
    return {
        "update_type": "order",
        "user_id": "AB1234",
        "exchange": "NSE",
        "instrument_token": "NSE_EQ|INE002A01018",
        "trading_symbol": "RELIANCE-EQ",
        "product": "D",
        "order_type": "MARKET",
        "average_price": 1296.1,
        "price": 0,
        "trigger_price": 0,
        "quantity": 75,
        "disclosed_quantity": 0,
        "pending_quantity": 0,
        "transaction_type": "BUY",
        "order_ref_id": "udapi-aqwsed14356",
        "exchange_order_id": "1300000025660919",
        "parent_order_id": None,
        "validity": "DAY",
        "status": "complete",
        "is_amo": False,
        "variety": "SIMPLE",
        "tag": child.child_order_id,
        "exchange_timestamp": "2026-11-25 15:00:00",
        "status_message": None,
        "order_id": child.broker_order_id,
        "order_request_id": "1",
        "order_timestamp": "2026-11-25 15:00:00",
        "filled_quantity": 75,
    }


def published(aws: EventSink) -> list[dict[str, Any]]:
    return [e for e in aws.drain() if e["detail-type"] == DetailType.EXECUTION_REPORTED]


def test_kite_postback_with_a_valid_checksum_is_applied_once(
    wiring: Wiring, aws: EventSink, kite: ChildOrder
) -> None:
    # GIVEN a Kite postback signed with the app's API secret
    body = kite_postback(kite)
    # WHEN it arrives twice before the tracker applied it (Kite retries), the tracker then
    # handles every event that reached the bus, and Kite sends it a third time
    first = call(handler, "POST", f"{HOOKS}/kite", body=body, claims=None)
    second = call(handler, "POST", f"{HOOKS}/kite", body=body, claims=None)
    events = published(aws)
    outcomes = [
        wiring.tracker.track(ExecutionReport.model_validate(e["detail"]["report"])).status
        for e in events
    ]
    third = call(handler, "POST", f"{HOOKS}/kite", body=body, claims=None)
    # THEN both early copies are accepted (the key is not used until applied), the tracker
    # stores the report once, and the copy after that is a duplicate that publishes nothing
    assert (first[0], first[1]["status"]) == (202, "accepted")
    assert (second[0], second[1]["status"]) == (202, "accepted")
    assert outcomes == ["recorded", "duplicate"]
    assert (third[0], third[1]["status"]) == (202, "duplicate")
    assert published(aws) == events
    assert {e["detail"]["idempotency_key"] for e in events} == {"kite:220531000000001:FILLED:75"}
    assert events[0]["detail"]["order_id"] == kite.order_id
    assert events[0]["detail"]["report"]["filledQuantity"] == 75
    with wiring.database.connection() as conn:
        [row] = conn.execute("SELECT count(*) AS n FROM execution_metrics").fetchall()
    assert row["n"] == 1


def test_a_postback_tagged_with_the_brokers_digest_is_applied_to_our_child(
    wiring: Wiring, aws: EventSink, kite: ChildOrder
) -> None:
    # GIVEN a Kite postback whose tag is not our child id (real adapters send a 20-character
    #       digest of it, since Kite's tags are shorter than our ids) but whose order id is ours
    body = {**kite_postback(kite), "tag": "3f9a0c1b2d4e5f607182"}
    # WHEN it arrives and the tracker handles what was published
    status, answer, _ = call(handler, "POST", f"{HOOKS}/kite", body=body, claims=None)
    [event] = published(aws)
    tracked = wiring.tracker.track(ExecutionReport.model_validate(event["detail"]["report"]))
    # THEN the published report names our child (found by the broker's order id), so the
    #      fill is recorded on it rather than lost as an unknown child
    assert (status, answer["status"]) == (202, "accepted")
    assert event["detail"]["report"]["childOrderId"] == kite.child_order_id
    assert tracked.status == "recorded"
    child = wiring.orders.get_child(kite.child_order_id)
    assert child is not None
    assert child.filled_quantity == 75


def test_kite_postback_with_a_forged_checksum_is_refused(
    wiring: Wiring, aws: EventSink, kite: ChildOrder
) -> None:
    # GIVEN a postback whose checksum was made with another secret
    body = kite_postback(kite, secret="not-the-secret")
    # WHEN it arrives
    status, answer, _ = call(handler, "POST", f"{HOOKS}/kite", body=body, claims=None)
    # THEN 401 and nothing stored or published
    assert status == 401
    assert answer["error"]["code"] == "UNAUTHENTICATED"
    assert published(aws) == []
    assert factories.unpublished_events(wiring.database) == 0


def test_hmac_webhook_replayed_after_the_window_is_refused(wiring: Wiring, aws: EventSink) -> None:
    # GIVEN a paper broker's generic report signed ten minutes ago
    child = placed_child(wiring, "zerodha", "ZERODHA-00000001")
    raw = json.dumps(
        {
            "brokerId": "zerodha",
            "brokerOrderId": "ZERODHA-00000001",
            "childOrderId": child.child_order_id,
            "status": "FILLED",
            "quantity": 75,
            "filledQuantity": 75,
            "averagePrice": "1296.00",
            "symbol": "RELIANCE",
            "exchange": "NSE",
            "side": "BUY",
            "timestamp": "2026-11-25T09:30:00+00:00",
        }
    ).encode()
    secret = seed.webhook_secrets()["zerodha/webhook"]
    stale = sign_webhook(raw, secret, timestamp=int(time.time()) - 600)
    fresh = sign_webhook(raw, secret, timestamp=int(time.time()))
    # WHEN it arrives stale, then freshly signed
    old = call(handler, "POST", f"{HOOKS}/zerodha", body=raw, headers=stale, claims=None)
    new = call(handler, "POST", f"{HOOKS}/zerodha", body=raw, headers=fresh, claims=None)
    # THEN the replay is refused and the fresh one accepted
    assert old[0] == 401
    assert (new[0], new[1]["status"]) == (202, "accepted")
    assert len(published(aws)) == 1


def test_unsigned_broker_needs_the_secret_path_token(
    wiring: Wiring, aws: EventSink, upstox: ChildOrder
) -> None:
    # GIVEN an Upstox order update
    body = upstox_update(upstox)
    # WHEN it arrives with a wrong token, then with the right one
    wrong = call(
        handler, "POST", f"{HOOKS}/upstox-live/wrong-token-0123456789", body=body, claims=None
    )
    right = call(handler, "POST", f"{HOOKS}/upstox-live/{UPSTOX_TOKEN}", body=body, claims=None)
    # THEN the wrong token is 401 and the right one accepted
    assert wrong[0] == 401
    assert (right[0], right[1]["status"]) == (202, "accepted")
    assert len(published(aws)) == 1


def test_malformed_payload_names_the_field(wiring: Wiring, kite: ChildOrder) -> None:
    # GIVEN a correctly signed Kite postback without transaction_type
    body = kite_postback(kite)
    del body["transaction_type"]
    # WHEN it arrives
    status, answer, _ = call(handler, "POST", f"{HOOKS}/kite", body=body, claims=None)
    # THEN 400 names the missing field
    assert status == 400
    assert answer["error"]["field"] == "transaction_type"


def test_unknown_broker_is_404(wiring: Wiring) -> None:
    # GIVEN no broker called "nobody"
    # WHEN a webhook arrives for it
    status, answer, _ = call(handler, "POST", f"{HOOKS}/nobody", body={}, claims=None)
    # THEN 404
    assert status == 404
    assert answer["error"]["code"] == "NOT_FOUND"
