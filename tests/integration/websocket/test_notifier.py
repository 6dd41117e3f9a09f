"""Pushing updates through the real boto3 management API client to a loopback server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from botocore.stub import Stubber

from shared.adapters.apigw_push import MAX_MESSAGE_BYTES, ApiGatewayNotifier, encode_message
from shared.adapters.redis.connections import RedisConnectionRegistry
from shared.domain.contracts import MessageType
from tests.integration.websocket.servers import FakeManagementApi, management_client

ROUTED = {"orderId": "o1", "symbol": "RELIANCE", "status": "ROUTED", "price": Decimal("2450.55")}


def test_a_user_with_three_connections_gets_three_copies_and_nobody_else_any(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN trader u1 on three connections and trader u2 on one
    for conn in ("a1", "a2", "a3"):
        registry.register(conn, "u1")
    registry.register("b1", "u2")
    # WHEN an update for u1 is pushed
    delivered = notifier.notify_user("u1", MessageType.ROUTING_UPDATE, ROUTED)
    # THEN each of u1's connections received one copy of the envelope, and u2 nothing
    assert delivered == 3
    assert sorted(management_api.received) == ["a1", "a2", "a3"]
    for conn in ("a1", "a2", "a3"):
        [message] = management_api.messages(conn)
        assert message["type"] == MessageType.ROUTING_UPDATE
        assert message["data"] == {**ROUTED, "price": "2450.55"}
        assert datetime.fromisoformat(message["timestamp"]).tzinfo == UTC
    assert management_api.messages("b1") == []


def test_a_gone_connection_is_pruned_and_the_others_still_receive(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN two connections of u1, one of which API Gateway has closed
    registry.register("alive", "u1")
    registry.register("dead", "u1")
    management_api.gone.add("dead")
    # WHEN an update is pushed
    delivered = notifier.notify_user("u1", MessageType.EXECUTION_UPDATE, {"orderId": "o1"})
    # THEN the live one received it and the gone one is removed from the registry
    assert delivered == 1
    assert len(management_api.messages("alive")) == 1
    assert registry.get("dead") is None
    assert [r.connection_id for r in registry.connections_of("u1")] == ["alive"]
    assert registry.count_active() == 1


def test_gone_exception_from_a_stubbed_client_prunes_too(
    registry: RedisConnectionRegistry,
) -> None:
    # GIVEN a client stubbed to answer GoneException (moto never does)
    client = management_client("https://abc123.execute-api.ap-south-1.amazonaws.com/prod")
    registry.register("c1", "u1")
    notifier = ApiGatewayNotifier(registry, endpoint_url=None, region="ap-south-1", client=client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "post_to_connection", service_error_code="GoneException", http_status_code=410
        )
        # WHEN a push reaches it
        delivered = notifier.notify_user("u1", MessageType.EXECUTION_UPDATE, {"orderId": "o1"})
        stub.assert_no_pending_responses()
    # THEN nothing was delivered and the connection is forgotten
    assert delivered == 0
    assert registry.get("c1") is None


def test_other_failures_are_counted_never_raised(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a connection the management API refuses with 403
    registry.register("c1", "u1")
    management_api.forbidden.add("c1")
    # WHEN an update is pushed
    delivered = notifier.notify_user("u1", MessageType.EXECUTION_UPDATE, {"orderId": "o1"})
    # THEN nothing raised, the connection is kept, and the failure metric was emitted
    assert delivered == 0
    assert registry.get("c1") is not None
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [metric] = [m for m in emitted if "WebSocketPushFailures" in m]
    assert metric["WebSocketPushFailures"] == [1.0]
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OrderRouter"


def test_no_endpoint_configured_is_a_counted_failure(registry: RedisConnectionRegistry) -> None:
    # GIVEN a notifier without a management endpoint
    registry.register("c1", "u1")
    notifier = ApiGatewayNotifier(registry, endpoint_url=None, region="ap-south-1")
    # WHEN / THEN a push delivers nothing and raises nothing
    assert notifier.notify_user("u1", MessageType.ROUTING_UPDATE, ROUTED) == 0


def test_order_and_symbol_filters_select_connections(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN u1 on an unfiltered connection, one on order o1 and one on symbol TCS
    registry.register("all", "u1")
    registry.register("o1-only", "u1")
    registry.register("tcs-only", "u1")
    registry.subscribe("o1-only", order_ids=["o1"])
    registry.subscribe("tcs-only", symbols=["TCS"])
    # WHEN updates for o1 (RELIANCE), o2 (TCS) and o3 (INFY) are pushed
    counts = [
        notifier.notify_user(
            "u1", MessageType.EXECUTION_UPDATE, {"orderId": "o1", "symbol": "RELIANCE"}
        ),
        notifier.notify_user(
            "u1", MessageType.EXECUTION_UPDATE, {"order_id": "o2", "symbol": "TCS"}
        ),
        notifier.notify_user(
            "u1", MessageType.EXECUTION_UPDATE, {"orderId": "o3", "symbol": "INFY"}
        ),
    ]
    # THEN each filtered connection got only its matches, the unfiltered one everything
    assert counts == [2, 2, 1]
    assert [m["data"].get("orderId") for m in management_api.messages("o1-only")] == ["o1"]
    assert [m["data"]["symbol"] for m in management_api.messages("tcs-only")] == ["TCS"]
    assert len(management_api.messages("all")) == 3


def test_profile_updates_reach_symbol_subscribers_of_any_user(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN two traders subscribed to TCS and one subscribed to nothing
    registry.register("c1", "u1")
    registry.register("c2", "u2")
    registry.register("c3", "u3")
    registry.subscribe("c1", symbols=["TCS"])
    registry.subscribe("c2", symbols=["TCS", "INFY"])
    # WHEN a TCS profile changes
    delivered = notifier.notify_symbol_subscribers(
        "TCS",
        MessageType.PROFILE_UPDATE,
        {"symbol": "TCS", "brokerId": "zerodha", "fillRate": 99.2},
    )
    # THEN both subscribers received it and the third connection did not
    assert delivered == 2
    assert [m["type"] for m in management_api.messages("c2")] == [MessageType.PROFILE_UPDATE]
    assert management_api.messages("c3") == []


def test_a_message_just_under_the_limit_is_sent_whole(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN an update whose envelope is a few bytes under 128 KB
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    base = len(
        encode_message(MessageType.EXECUTION_UPDATE, {"orderId": "o1", "note": ""}, now=now) or b""
    )
    data = {"orderId": "o1", "note": "x" * (MAX_MESSAGE_BYTES - base - 10)}
    body = encode_message(MessageType.EXECUTION_UPDATE, data, now=now)
    assert body is not None
    assert MAX_MESSAGE_BYTES - 10 <= len(body) <= MAX_MESSAGE_BYTES
    registry.register("c1", "u1")
    # WHEN it is pushed
    delivered = notifier.notify_user("u1", MessageType.EXECUTION_UPDATE, data)
    # THEN it arrives intact, untruncated
    assert delivered == 1
    [message] = management_api.messages("c1")
    assert message["data"] == data
    assert len(management_api.received["c1"][0]) <= MAX_MESSAGE_BYTES


def test_an_oversize_update_drops_its_bulkiest_fields() -> None:
    # GIVEN an update with two big lists and identifiers, 200 KB in all
    data = {
        "orderId": "o1",
        "status": "ROUTED",
        "allocations": [{"brokerId": f"b{i}", "quantity": i} for i in range(100)],
        "brokerScores": [{"brokerId": f"b{i}", "explain": "y" * 200} for i in range(1000)],
    }
    # WHEN it is encoded
    body = encode_message(MessageType.ROUTING_UPDATE, data)
    # THEN only the bulkiest list went, the rest is intact, and the client is told
    assert body is not None
    assert len(body) <= MAX_MESSAGE_BYTES
    sent = json.loads(body)["data"]
    assert sent["truncated"] is True
    assert sent["omitted"] == ["brokerScores"]
    assert sent["orderId"] == "o1"
    assert sent["allocations"] == data["allocations"]


def test_an_update_that_cannot_be_shrunk_is_not_sent(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN an update of 20,000 small scalar fields (nothing bulky to drop)
    data = {f"field{i:05d}": i for i in range(20_000)}
    registry.register("c1", "u1")
    # WHEN it is pushed
    delivered = notifier.notify_user("u1", MessageType.EXECUTION_UPDATE, data)
    # THEN it is refused rather than sent over the limit
    assert encode_message(MessageType.EXECUTION_UPDATE, data) is None
    assert delivered == 0
    assert management_api.calls == 0


def test_a_broker_status_reaches_every_live_connection_of_every_user_whatever_its_filters(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN two traders' connections, one filtered to an order, and one connection gone
    registry.register("a1", "u1")
    registry.register("a2", "u1")
    registry.subscribe("a2", order_ids=["ord-1"])
    registry.register("b1", "u2")
    registry.register("gone", "u3")
    registry.remove("gone")
    status = {"brokerId": "zerodha", "status": "MAINTENANCE", "reason": "upgrade"}
    # WHEN a broker's status is broadcast
    delivered = notifier.notify_all(MessageType.BROKER_STATUS, status)
    # THEN every live connection got it once, filters notwithstanding, and the gone one nothing
    assert delivered == 3
    assert sorted(management_api.received) == ["a1", "a2", "b1"]
    for conn in ("a1", "a2", "b1"):
        [message] = management_api.messages(conn)
        assert (message["type"], message["data"]) == (MessageType.BROKER_STATUS, status)


def test_a_broadcast_with_nobody_connected_or_redis_down_sends_nothing(
    notifier: ApiGatewayNotifier, management_api: FakeManagementApi
) -> None:
    # GIVEN nobody connected, then a notifier whose registry's Redis does not answer
    import redis

    from local.services import free_port

    dead = RedisConnectionRegistry(redis.Redis(port=free_port(), socket_connect_timeout=0.2))
    down = ApiGatewayNotifier(dead, endpoint_url=management_api.url, region="ap-south-1")
    # WHEN a broker status is broadcast through each
    # THEN neither sends anything nor raises
    assert notifier.notify_all(MessageType.BROKER_STATUS, {"brokerId": "x"}) == 0
    assert down.notify_all(MessageType.BROKER_STATUS, {"brokerId": "x"}) == 0
    assert not management_api.received


def test_an_operator_connection_gets_broker_status_but_never_order_updates(
    registry: RedisConnectionRegistry,
    notifier: ApiGatewayNotifier,
    management_api: FakeManagementApi,
) -> None:
    # GIVEN an operator's connection (ADMIN only) whose user id is also a trader's, subscribed
    # to that trader's order, and the trader's own connection
    registry.register("op", "u1", trader=False)
    registry.subscribe("op", order_ids=["o1"])
    registry.register("t1", "u1")
    # WHEN the trader's order update and a broker status are pushed
    notifier.notify_user("u1", MessageType.ROUTING_UPDATE, ROUTED)
    notifier.notify_users([("u1", MessageType.EXECUTION_UPDATE, {"orderId": "o1"})])
    notifier.notify_all(MessageType.BROKER_STATUS, {"brokerId": "dhan", "status": "ACTIVE"})
    # THEN the operator got the broker status only; the trader got all three
    assert [m["type"] for m in management_api.messages("op")] == [MessageType.BROKER_STATUS]
    assert [m["type"] for m in management_api.messages("t1")] == [
        MessageType.ROUTING_UPDATE,
        MessageType.EXECUTION_UPDATE,
        MessageType.BROKER_STATUS,
    ]
    # AND the operator's filters did not turn it into a trader's connection
    record = registry.get("op")
    assert record is not None
    assert record.trader is False
