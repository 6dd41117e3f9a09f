"""The Redis connection registry: layout, TTL, filters, removal, active count."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.adapters.redis.client import RedisGuard
from shared.adapters.redis.connections import CONNECTION_TTL_S, RedisConnectionRegistry
from shared.domain.connections import ConnectionRecord
from shared.domain.errors import CacheUnavailableError


def test_register_sets_a_two_hour_ttl_on_every_key(
    registry: RedisConnectionRegistry, redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN / WHEN a connection is registered and subscribes to a symbol
    registry.register("c1", "u1")
    registry.subscribe("c1", symbols=["RELIANCE"])
    # THEN its keys live under the prefix with API Gateway's 2-hour limit as TTL
    for key in ("ws:conn:c1", "ws:user:u1", "ws:symbol:RELIANCE"):
        ttl = redis_client.ttl(f"{redis_prefix}{key}")
        assert CONNECTION_TTL_S - 5 <= ttl <= CONNECTION_TTL_S == 7200, key
    assert redis_client.zscore(f"{redis_prefix}ws:active", "c1") is not None


def test_activity_refreshes_the_ttl(
    registry: RedisConnectionRegistry, redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN a connection whose keys are about to expire
    registry.register("c1", "u1")
    redis_client.expire(f"{redis_prefix}ws:conn:c1", 30)
    redis_client.expire(f"{redis_prefix}ws:user:u1", 30)
    # WHEN the connection shows activity
    record = registry.touch("c1")
    # THEN both keys are back to two hours
    assert record == ConnectionRecord("c1", "u1")
    assert redis_client.ttl(f"{redis_prefix}ws:conn:c1") > CONNECTION_TTL_S - 5
    assert redis_client.ttl(f"{redis_prefix}ws:user:u1") > CONNECTION_TTL_S - 5
    # AND touching an unknown connection reports it
    assert registry.touch("nope") is None


def test_disconnect_removes_every_trace(
    registry: RedisConnectionRegistry, redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN two connections of one user, one subscribed to a symbol
    registry.register("c1", "u1")
    registry.register("c2", "u1")
    registry.subscribe("c1", order_ids=["o1"], symbols=["TCS"])
    # WHEN the subscribed one disconnects
    assert registry.remove("c1") == "u1"
    # THEN it is gone from the user, the symbol and the active count; the other one stays
    assert [r.connection_id for r in registry.connections_of("u1")] == ["c2"]
    assert registry.subscribers_of_symbol("TCS") == []
    assert registry.count_active() == 1
    assert not redis_client.exists(f"{redis_prefix}ws:conn:c1")
    # AND removing it again is harmless
    assert registry.remove("c1") is None


def test_subscribe_adds_and_unsubscribe_removes_filters(
    registry: RedisConnectionRegistry,
) -> None:
    # GIVEN a connection
    registry.register("c1", "u1")
    # WHEN it subscribes twice, then drops one order, then everything
    registry.subscribe("c1", order_ids=["o1", "o2"])
    after_add = registry.subscribe("c1", symbols=["INFY"], order_ids=["o3"])
    after_drop = registry.unsubscribe("c1", order_ids=["o2"])
    after_clear = registry.unsubscribe("c1")
    # THEN filters accumulate, shrink, and clear, and Redis agrees at each step
    assert after_add == ConnectionRecord(
        "c1", "u1", frozenset({"o1", "o2", "o3"}), frozenset({"INFY"})
    )
    assert after_drop is not None
    assert after_drop.order_ids == {"o1", "o3"}
    assert after_clear == ConnectionRecord("c1", "u1")
    assert registry.get("c1") == ConnectionRecord("c1", "u1")
    assert registry.subscribers_of_symbol("INFY") == []


def test_expired_connections_are_dropped_from_sets_and_count(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN a registry on a fake clock, and a connection whose $disconnect was lost
    now = [1_000_000.0]
    registry = RedisConnectionRegistry(redis_client, prefix=redis_prefix, clock=lambda: now[0])
    registry.register("lost", "u1")
    registry.register("live", "u1")
    redis_client.delete(f"{redis_prefix}ws:conn:lost")  # what its TTL would have done
    # WHEN the user's connections are listed and, two hours later, the active ones counted
    listed = registry.connections_of("u1")
    assert registry.count_active() == 2
    now[0] += CONNECTION_TTL_S + 1
    # THEN the stale member is skipped and removed from the set, and the count expires
    assert [r.connection_id for r in listed] == ["live"]
    assert redis_client.smembers(f"{redis_prefix}ws:user:u1") == {b"live"}
    assert registry.count_active() == 0


def test_redis_down_is_cache_unavailable() -> None:
    # GIVEN a registry whose Redis does not answer
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    registry = RedisConnectionRegistry(client, guard=RedisGuard())
    # WHEN / THEN every operation raises the domain error, not a driver error
    with pytest.raises(CacheUnavailableError):
        registry.register("c1", "u1")
    with pytest.raises(CacheUnavailableError):
        registry.connections_of("u1")


@pytest.mark.parametrize(
    ("record", "data", "wanted"),
    [
        (ConnectionRecord("c", "u"), {"orderId": "o9"}, True),
        (ConnectionRecord("c", "u", frozenset({"o1"})), {"orderId": "o1"}, True),
        (ConnectionRecord("c", "u", frozenset({"o1"})), {"order_id": "o1"}, True),
        (ConnectionRecord("c", "u", frozenset({"o1"})), {"orderId": "o2"}, False),
        (ConnectionRecord("c", "u", frozenset({"o1"})), {"symbol": "TCS"}, False),
        (ConnectionRecord("c", "u", symbols=frozenset({"TCS"})), {"symbol": "TCS"}, True),
        (ConnectionRecord("c", "u", symbols=frozenset({"TCS"})), {"orderId": "o1"}, False),
        (
            ConnectionRecord("c", "u", frozenset({"o1"}), frozenset({"TCS"})),
            {"orderId": "o2", "symbol": "TCS"},
            True,
        ),
    ],
)
def test_filters_match_order_ids_or_symbols(
    record: ConnectionRecord, data: dict[str, str], wanted: bool
) -> None:
    # GIVEN a connection's filters WHEN an update arrives THEN it passes only on a match
    assert record.wants(data) is wanted
