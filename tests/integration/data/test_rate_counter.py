"""The per-broker, per-second order counter on a real Redis."""

from __future__ import annotations

import pytest
import redis

from local.services import EmbeddedRedis
from shared.adapters.redis.client import RedisGuard
from shared.adapters.redis.profile_cache import RedisProfileCache
from shared.adapters.redis.rate_counter import RedisRateCounter
from shared.adapters.redis.routing_inputs import RedisRoutingInputs
from shared.domain.errors import CacheUnavailableError


def counts_of(
    client: redis.Redis, prefix: str, counter: RedisRateCounter, broker_ids: list[str]
) -> dict[str, int]:
    """What routing reads: the counts, with the (here empty) cached profiles."""
    guard = RedisGuard(cooldown_s=0)
    cache = RedisProfileCache(client, ttl_s=300, prefix=prefix, guard=guard)
    _, counts = RedisRoutingInputs(client, cache, counter, guard=guard).read("RELIANCE", broker_ids)
    return counts


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_hits_are_counted_per_broker_within_the_second(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN a counter at a fixed second
    clock = Clock(1_795_000_000.2)
    counter = RedisRateCounter(redis_client, prefix=redis_prefix, clock=clock)
    # WHEN three children go to zerodha and one to upstox in one placement round, then one more
    # to zerodha
    counter.hit(["zerodha", "upstox", "zerodha", "zerodha"])
    counter.hit(["zerodha"])
    # THEN the counts say so and a broker that got nothing is absent
    assert counts_of(redis_client, redis_prefix, counter, ["zerodha", "upstox", "dhan"]) == {
        "zerodha": 4,
        "upstox": 1,
    }
    # AND the next second starts from zero, and the keys expire on their own
    clock.now += 1
    assert counts_of(redis_client, redis_prefix, counter, ["zerodha", "upstox"]) == {}
    ttl = redis_client.ttl(f"{redis_prefix}rate:zerodha:1795000000")
    assert isinstance(ttl, int)
    assert 0 < ttl <= 2


def test_a_stopped_redis_counts_nothing_and_never_raises(redis_prefix: str) -> None:
    # GIVEN a counter whose Redis is stopped
    server = EmbeddedRedis().start()
    client = redis.Redis.from_url(server.url, socket_timeout=0.2, socket_connect_timeout=0.2)
    counter = RedisRateCounter(client, prefix=redis_prefix, guard=RedisGuard(cooldown_s=0))
    counter.hit(["zerodha"])
    server.stop()
    # WHEN an order is counted
    counter.hit(["zerodha"])
    # THEN nothing is raised: routing goes on (the broker's own limit still applies), and the
    # read of the routing inputs says the cache is unavailable (the service falls back)
    with pytest.raises(CacheUnavailableError):
        counts_of(client, redis_prefix, counter, ["zerodha"])
    client.close()
