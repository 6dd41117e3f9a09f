"""The Redis analytics cache on a real Redis: key, expiry, and a Redis that is gone."""

from __future__ import annotations

import pytest
import redis

from shared.adapters.redis.analytics_cache import RedisAnalyticsCache
from shared.adapters.redis.client import RedisGuard
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
