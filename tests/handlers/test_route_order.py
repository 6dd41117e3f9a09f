"""route_order through lambda_handler with API Gateway v2 events, real Postgres and Redis."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

import shared.wiring
from functions.route_order import handler, openapi
from local import seed
from local.services import free_port
from shared.adapters.eventbridge import EventBridgePublisher
from shared.domain.contracts import ApiPath, DetailType, DomainEvent
from shared.settings import Settings
from shared.wiring import Wiring, utc_now
from tests.handlers.support import API, OTHER_TRADER, TRADER, EventSink, RecordingNotifier, call

SMART = f"{API}/orders/smart"
ANALYZE = f"{API}/orders/analyze"
MARKET_BUY = {
    "symbol": "RELIANCE",
    "side": "BUY",
    "quantity": 100,
    "orderType": "MARKET",
    "routingObjective": "SMART_BALANCE",
}


def count(wiring: Wiring, table: str) -> int:
    with wiring.database.connection() as conn:
        row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
    assert row is not None
    return int(row["n"])


def test_specification_integration_case(wiring: Wiring, aws: EventSink) -> None:
    # GIVEN seeded brokers and profiles for RELIANCE
    # WHEN a trader submits the specification's smart order
    status, body, _ = call(handler, "POST", SMART, body=MARKET_BUY)
    # THEN it is routed: allocations is an array and confidenceScore a number
    assert status == 200, body
    assert isinstance(body["allocations"], list)
    assert body["allocations"]
    assert isinstance(body["confidenceScore"], float)
    assert sum(a["quantity"] for a in body["allocations"]) == 100
    assert body["status"] == "ROUTED"
    assert all(a["status"] == "PLACED" for a in body["allocations"])
    assert {s["brokerId"] for s in body["brokerScores"]} >= {
        a["brokerId"] for a in body["allocations"]
    }
    # AND the decision, its children and the events are stored, and the events reached the bus
    assert count(wiring, "order_routing_decisions") == 1
    assert count(wiring, "child_orders") == len(body["allocations"])
    types = aws.detail_types()
    assert types.count(DetailType.ORDER_ROUTED) == 1
    assert DetailType.CHILD_ORDER_PLACED in types
    assert DetailType.EXECUTION_REPORTED in types


def test_analyze_returns_a_recommendation_without_storing_anything(wiring: Wiring) -> None:
    # GIVEN seeded brokers
    # WHEN a trader asks for a recommendation
    status, body, _ = call(handler, "POST", ANALYZE, body={**MARKET_BUY, "quantity": 5000})
    # THEN the decision comes back and nothing is stored
    assert status == 200, body
    assert sum(a["quantity"] for a in body["allocations"]) == 5000
    assert "orderId" not in body
    assert count(wiring, "orders") == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "query"),
    [
        ("POST", SMART, MARKET_BUY, None),
        ("POST", ANALYZE, MARKET_BUY, None),
        ("GET", f"{API}/orders/ord-1", None, None),
        ("GET", f"{API}/analytics/execution", None, {"days": "30"}),
        ("GET", f"{API}/brokers/profiles", None, {"symbol": "RELIANCE"}),
    ],
)
def test_every_trading_route_needs_a_trader(
    wiring: Wiring, method: str, path: str, body: Any, query: dict[str, str] | None
) -> None:
    # GIVEN a request without claims and one from a caller outside the TRADER group
    # WHEN each is sent
    anonymous, anonymous_body, _ = call(handler, method, path, body=body, query=query, claims=None)
    viewer, viewer_body, _ = call(
        handler,
        method,
        path,
        body=body,
        query=query,
        claims={"sub": "v", "cognito:groups": ["VIEWER"]},
    )
    # THEN the first is 401 and the second 403, with machine-readable codes
    assert (anonymous, viewer) == (401, 403)
    assert anonymous_body["error"]["code"] == "UNAUTHENTICATED"
    assert viewer_body["error"]["code"] == "FORBIDDEN"
    assert count(wiring, "orders") == 0


def test_ten_concurrent_duplicates_make_one_decision(wiring: Wiring) -> None:
    # GIVEN ten copies of one order with the same clientOrderId
    body = {**MARKET_BUY, "clientOrderId": "dup-1", "quantity": 300}
    # WHEN they arrive at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: call(handler, "POST", SMART, body=body), range(10)))
    # THEN all ten answer 200 with one order: one decision and one set of children exist
    assert [status for status, _, _ in results] == [200] * 10
    assert len({b["orderId"] for _, b, _ in results}) == 1
    assert sum(1 for _, b, _ in results if not b["replayed"]) == 1
    assert count(wiring, "order_routing_decisions") == 1
    first = next(b for _, b, _ in results if not b["replayed"])
    assert count(wiring, "child_orders") == sum(
        len(a["childOrderIds"]) for a in first["allocations"]
    )


def test_retry_returns_the_original_answer_even_when_routing_would_now_fail(
    wiring: Wiring,
) -> None:
    # GIVEN an order routed under a client order id
    body = {**MARKET_BUY, "clientOrderId": "retry-1"}
    first, original, _ = call(handler, "POST", SMART, body=body)
    # AND every broker then going offline
    with wiring.database.connection() as conn:
        conn.execute("UPDATE broker_execution_profiles SET status = 'OFFLINE'")
    stale = list(wiring.redis.scan_iter(f"{wiring.settings.redis_key_prefix}profile:*"))
    wiring.redis.delete(*stale)
    # WHEN the client retries the same request
    again, replay, _ = call(handler, "POST", SMART, body=body)
    # THEN it gets the original answer, not a routing error
    assert (first, again) == (200, 200)
    assert replay["orderId"] == original["orderId"]
    assert replay["replayed"] is True


def test_same_key_with_another_body_is_a_conflict(wiring: Wiring) -> None:
    # GIVEN an order submitted with an Idempotency-Key header
    headers = {"idempotency-key": "key-42"}
    first, _, _ = call(handler, "POST", SMART, body=MARKET_BUY, headers=headers)
    # WHEN the same key comes with another quantity
    second, body, _ = call(
        handler, "POST", SMART, body={**MARKET_BUY, "quantity": 7}, headers=headers
    )
    # THEN the second is refused with 409 and nothing new is stored
    assert (first, second) == (200, 409)
    assert body["error"]["code"] == "CONFLICT"
    assert count(wiring, "orders") == 1


def test_rejecting_broker_cascades_to_the_next(wiring: Wiring) -> None:
    # GIVEN that the broker the router prefers for this order rejects everything
    _, analysis, _ = call(handler, "POST", ANALYZE, body=MARKET_BUY)
    preferred = analysis["allocations"][0]["brokerId"]
    config = wiring.brokers.get(preferred)
    assert config is not None
    wiring.brokers.upsert(
        config.model_copy(update={"adapter_config": {**config.adapter_config, "rejectRate": 1.0}})
    )
    # WHEN the order is submitted
    status, body, _ = call(handler, "POST", SMART, body=MARKET_BUY)
    # THEN the rejected quantity went to another broker and the decision records the cascade
    assert status == 200, body
    assert body["status"] == "ROUTED"
    [cascade] = [c for c in body["cascades"] if c["fromBrokerId"] == preferred]
    assert cascade["toBrokerId"] not in (None, preferred)
    cascaded = [a for a in body["allocations"] if a["cascadedFrom"] == preferred]
    assert sum(a["quantity"] for a in cascaded) == cascade["quantity"]
    status, view, _ = call(handler, "GET", f"{API}/orders/{body['orderId']}")
    assert status == 200
    assert {c["status"] for c in view["childOrders"] if c["brokerId"] == preferred} == {"REJECTED"}


class FailingPublisher:
    """An event bus that is down."""

    def __init__(self) -> None:
        self.attempts = 0

    def publish(self, events: list[DomainEvent]) -> list[DomainEvent]:
        self.attempts += 1
        return list(events)


def test_events_stay_in_the_outbox_when_eventbridge_fails_and_are_relayed_later(
    app_settings: Settings, wiring: Wiring, aws: EventSink
) -> None:
    # GIVEN EventBridge failing during the order
    down = FailingPublisher()
    wiring.__dict__["publisher"] = down
    wiring.__dict__.pop("routing", None)
    # WHEN an order is submitted
    status, body, _ = call(handler, "POST", SMART, body=MARKET_BUY)
    # THEN the order still succeeds and its events wait in the outbox
    assert status == 200, body
    assert down.attempts == 1
    assert aws.detail_types() == []
    pending = count(wiring, "event_outbox WHERE published_at IS NULL")
    assert pending >= 3
    # AND the relay publishes them once EventBridge is back
    up = EventBridgePublisher(
        lambda: boto3.client("events", region_name="ap-south-1"), app_settings.event_bus_name
    )
    published, failed = wiring.outbox.relay(up.publish, min_age_s=0)
    assert (published, failed) == (pending, 0)
    assert DetailType.ORDER_ROUTED in aws.detail_types()


def test_redis_down_still_routes_from_postgres(
    app_settings: Settings,
    aws: EventSink,
    notifier: RecordingNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a service whose Redis does not answer (nothing listens on its port)
    settings = app_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    broken = Wiring(settings, notifier=notifier)
    for broker in seed.seed_brokers():
        broken.brokers.upsert(broker)
    for profile in seed.seed_profiles(utc_now()):
        broken.profile_repository.upsert(profile)
    for instrument in seed.seed_instruments(utc_now()):
        broken.instruments.upsert(instrument)
    monkeypatch.setattr(shared.wiring, "get_wiring", lambda: broken)
    # WHEN an order is submitted
    status, body, _ = call(handler, "POST", SMART, body={**MARKET_BUY, "clientOrderId": "no-redis"})
    # THEN it is routed from Postgres, and health says degraded
    assert status == 200, body
    assert body["allocations"]
    health, health_body, _ = call(handler, "GET", ApiPath.HEALTH, claims=None)
    assert (health, health_body["status"]) == (200, "degraded")
    broken.database.close()


def test_bad_requests_get_clear_errors(wiring: Wiring) -> None:
    # GIVEN malformed JSON, a schema violation, a limit order without a price and an unknown order
    malformed = call(handler, "POST", SMART, body="{not json")
    schema = call(handler, "POST", SMART, body={**MARKET_BUY, "quantity": -5})
    no_price = call(handler, "POST", SMART, body={**MARKET_BUY, "orderType": "LIMIT"})
    unknown = call(handler, "GET", f"{API}/orders/ord-missing")
    # THEN each answers its status with a machine-readable body naming the field
    assert malformed[0] == 400
    assert malformed[1]["error"]["code"] == "MALFORMED_JSON"
    assert schema[0] == 422
    assert schema[1]["error"]["details"][0]["field"] == "quantity"
    assert no_price[0] == 422
    assert "limitPrice" in json.dumps(no_price[1])
    assert unknown[0] == 404
    assert count(wiring, "orders") == 0


def test_order_for_a_listed_symbol_no_broker_trades_names_the_symbol(wiring: Wiring) -> None:
    # GIVEN a symbol in the instrument master that no broker has a profile for
    reliance = next(i for i in seed.seed_instruments(utc_now()) if i.symbol == "RELIANCE")
    wiring.instruments.upsert(dataclasses.replace(reliance, symbol="NOSUCH"))
    # WHEN an order for it is submitted
    status, body, _ = call(handler, "POST", SMART, body={**MARKET_BUY, "symbol": "NOSUCH"})
    # THEN 422 names the field, and nothing is stored
    assert status == 422, body
    assert (body["error"]["code"], body["error"]["field"]) == ("INVALID_ORDER", "symbol")
    assert count(wiring, "orders") == 0


def test_another_users_order_is_not_found(wiring: Wiring) -> None:
    # GIVEN an order of trader-1
    _, body, _ = call(handler, "POST", SMART, body=MARKET_BUY)
    # WHEN trader-2 asks for it, and trader-1 does
    other, _, _ = call(handler, "GET", f"{API}/orders/{body['orderId']}", claims=OTHER_TRADER)
    own, view, _ = call(handler, "GET", f"{API}/orders/{body['orderId']}", claims=TRADER)
    # THEN trader-2 gets 404 and trader-1 the full view
    assert (other, own) == (404, 200)
    assert view["order"]["orderId"] == body["orderId"]
    assert len(view["allocations"]) == len(body["allocations"])


def test_analytics_window_validation_and_empty_window(wiring: Wiring) -> None:
    # GIVEN a trader without orders
    # WHEN analytics are asked for a valid and an invalid window
    ok, body, _ = call(handler, "GET", f"{API}/analytics/execution", query={"days": "7"})
    too_long, _, _ = call(handler, "GET", f"{API}/analytics/execution", query={"days": "366"})
    # THEN the valid one is zeros and the invalid one 422
    assert (ok, too_long) == (200, 422)
    assert body["summary"]["orders"] == 0
    assert body["days"] == 7


def test_profiles_route_lists_current_profiles(wiring: Wiring) -> None:
    # GIVEN seeded profiles
    # WHEN a trader asks for RELIANCE's profiles
    status, body, _ = call(handler, "GET", f"{API}/brokers/profiles", query={"symbol": "RELIANCE"})
    # THEN every seeded broker is listed in camelCase
    assert status == 200
    assert {p["brokerId"] for p in body} == {"zerodha", "upstox", "dhan", "fyers", "angelone"}
    assert all("avgExecutionTimeMs" in p for p in body)


def test_health_is_503_when_postgres_does_not_answer(
    unreachable_postgres: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a service whose Postgres is unreachable
    down = Wiring(unreachable_postgres)
    monkeypatch.setattr(shared.wiring, "get_wiring", lambda: down)
    # WHEN health and an order are requested
    health, body, _ = call(handler, "GET", ApiPath.HEALTH, claims=None)
    order, order_body, headers = call(handler, "POST", SMART, body=MARKET_BUY)
    # THEN health is 503 and the order 503 with Retry-After
    assert health == 503
    assert body["dependencies"]["postgres"] == "down"
    assert order == 503
    assert order_body["error"]["code"] == "DATA_UNAVAILABLE"
    assert headers.get("Retry-After") == "5"


def test_openapi_document_is_up_to_date() -> None:
    # GIVEN the committed OpenAPI document (docs/openapi.json links to the shipped copy)
    committed = (Path(__file__).parents[2] / "docs" / "openapi.json").read_text()
    # WHEN it is assembled again from the resolvers
    generated = openapi.render()
    # THEN they are the same (regenerate with: python -m functions.route_order.openapi)
    assert committed == generated
