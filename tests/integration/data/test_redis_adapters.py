"""Redis adapters on a real Redis: the analytics cache, and clearing profiles and connections."""

from __future__ import annotations

import pytest
import redis

from shared.adapters.redis.analytics_cache import RedisAnalyticsCache
from shared.adapters.redis.client import RedisGuard
from shared.adapters.redis.connections import RedisConnectionRegistry
from shared.adapters.redis.profile_cache import RedisProfileCache
from shared.domain.analytics import ExecutionAnalytics, ExecutionStats
from shared.domain.errors import CacheUnavailableError


def _analytics() -> ExecutionAnalytics:
    return ExecutionAnalytics(user_id="u1", days=30, summary=ExecutionStats(orders=3))


def test_put_then_get_round_trips_under_the_prefix_with_its_ttl(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN a cache with a 60-second time to live
    cache = RedisAnalyticsCache(redis_client, ttl_s=60, prefix=redis_prefix, guard=RedisGuard())
    # WHEN analytics are stored
    cache.put("u1", 30, _analytics())
    # THEN they come back equal, under the prefixed key, expiring within the TTL
    assert cache.get("u1", 30) == _analytics()
    assert cache.get("u1", 7) is None
    assert 0 < redis_client.ttl(f"{redis_prefix}analytics:u1:30") <= 60


def test_an_unreachable_redis_raises_the_domain_error() -> None:
    # GIVEN a cache pointed at a port nobody listens on
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    cache = RedisAnalyticsCache(client, ttl_s=60, guard=RedisGuard())
    # WHEN it is read
    # THEN the driver's error is translated into the domain's
    with pytest.raises(CacheUnavailableError):
        cache.get("u1", 30)


def test_clearing_the_profile_cache_and_registry_keeps_other_prefixes(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN cached profiles and connections under this prefix, and a key of another prefix
    redis_client.set(f"{redis_prefix}profile:zerodha:TCS", "{}")
    redis_client.set(f"{redis_prefix}profile:dhan:TCS", "{}")
    registry = RedisConnectionRegistry(redis_client, prefix=redis_prefix)
    registry.register("c1", "trader-1")
    redis_client.set(f"other-{redis_prefix}profile:zerodha:TCS", "{}")
    # WHEN local mode's start clears both
    profiles = RedisProfileCache(redis_client, ttl_s=300, prefix=redis_prefix).clear()
    connections = registry.clear()
    # THEN exactly this prefix's profiles and connections are gone
    assert profiles == 2
    assert connections > 0
    assert registry.get("c1") is None
    assert list(redis_client.scan_iter(match=f"{redis_prefix}*")) == []
    assert redis_client.get(f"other-{redis_prefix}profile:zerodha:TCS") == b"{}"
    redis_client.delete(f"other-{redis_prefix}profile:zerodha:TCS")


def test_evicting_a_broker_forgets_its_profiles_of_every_symbol_and_nothing_else(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN zerodha cached for two symbols, a broker whose id starts the same, and another one
    for key in ("profile:zerodha:TCS", "profile:zerodha:INFY", "profile:zerodha2:TCS"):
        redis_client.set(f"{redis_prefix}{key}", "{}")
    redis_client.set(f"{redis_prefix}profile:dhan:TCS", "null")
    cache = RedisProfileCache(redis_client, ttl_s=300, prefix=redis_prefix)
    # WHEN zerodha's status changes and it is evicted
    evicted = cache.evict_broker("zerodha")
    # THEN both of its entries are gone and the others stay
    assert evicted == 2
    left = sorted(k.decode() for k in redis_client.scan_iter(match=f"{redis_prefix}profile:*"))
    assert left == [f"{redis_prefix}profile:dhan:TCS", f"{redis_prefix}profile:zerodha2:TCS"]


def test_evicting_with_redis_down_raises_the_domain_error() -> None:
    # GIVEN a cache pointed at a port nobody listens on
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    cache = RedisProfileCache(client, ttl_s=300, guard=RedisGuard())
    # WHEN a broker is evicted THEN the driver's error is the domain's (the service logs it)
    with pytest.raises(CacheUnavailableError):
        cache.evict_broker("zerodha")
