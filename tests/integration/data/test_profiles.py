"""Profile learning under concurrency, and the Redis read-through cache."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
import redis

from local.services import EmbeddedRedis
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import PostgresProfileRepository
from shared.adapters.redis.client import RedisGuard
from shared.adapters.redis.profile_cache import RedisProfileCache
from shared.adapters.redis.rate_counter import RedisRateCounter
from shared.adapters.redis.routing_inputs import RedisRoutingInputs
from shared.domain.engine import decide_route
from shared.domain.execution import ProfileObservation as Observation
from shared.domain.models import BrokerProfile
from shared.ports import Observed
from shared.services.profiles import ProfileService
from shared.settings import Settings
from tests import factories
from tests.integration.data.test_repositories import seed_brokers

BROKERS = ("zerodha", "upstox", "dhan", "fyers", "groww", "angel", "kotak", "icici")


def _cached(
    cache: RedisProfileCache, client: redis.Redis, symbol: str, broker_ids: Sequence[str]
) -> dict[str, BrokerProfile | None]:
    """What the cache holds, read as routing reads it (one MGET of the cache's keys)."""
    return cache.decode(symbol, broker_ids, client.mget(cache.keys(symbol, broker_ids)))


def observation(_: int) -> Observation:
    # Every writer sends the same stream of values, so the final averages do not depend on
    # the interleaving; a lost update would still change them (see the chosen alpha).
    return Observation(
        latency_ms=200.0,
        fill_rate_pct=100.0,
        slippage_bps=5000.0,
        price_improvement_bps=-40.0,
        is_error=False,
    )


def test_concurrent_writers_lose_no_update(db: Database) -> None:
    # GIVEN two brokers' profiles that never learned, and a discount so slow that 999 and
    # 1,000 updates differ
    seed_brokers(db, "zerodha", "upstox")
    repo = PostgresProfileRepository(db)
    alpha = 0.001
    updates = 1_000
    # WHEN 8 threads apply 1,000 updates to one profile one at a time, and the same updates go
    # to the other broker's profile in one batch
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda i: repo.learn(
                    [Observed("zerodha", "RELIANCE", observation(i), factories.NOW)], alpha=alpha
                ),
                range(updates),
            )
        )
    repo.learn(
        [Observed("upstox", "TCS", observation(i), factories.NOW) for i in range(updates)],
        alpha=alpha,
    )
    concurrent = repo.get("zerodha", "RELIANCE")
    serial = repo.get("upstox", "TCS")
    # THEN the concurrent result equals the batched one: same count, same averages
    assert concurrent is not None
    assert serial is not None
    assert concurrent.sample_count == serial.sample_count == updates
    assert concurrent.slippage_bps == serial.slippage_bps
    assert concurrent.avg_execution_time_ms == serial.avg_execution_time_ms
    assert concurrent.uncertainty == serial.uncertainty
    # AND they are the domain's posterior of exactly 1,000 updates, which 999 would miss
    post = factories.replayed_posterior(
        "zerodha", "RELIANCE", [observation(i) for i in range(updates)], alpha=alpha
    )
    fewer = factories.replayed_posterior(
        "zerodha", "RELIANCE", [observation(i) for i in range(updates - 1)], alpha=alpha
    )
    assert concurrent.slippage_bps == round(post.slippage.mean, 4)
    assert concurrent.uncertainty is not None
    assert concurrent.uncertainty.slippage.weight == pytest.approx(post.slippage.weight)
    assert concurrent.uncertainty.slippage.weight != pytest.approx(fewer.slippage.weight)


def test_observation_updates_every_average_and_the_error_rate(db: Database) -> None:
    # GIVEN a profile with known averages (seeded: they are its prior)
    seed_brokers(db, "zerodha")
    repo = PostgresProfileRepository(db)
    seeded = factories.profile(
        "zerodha",
        avg_execution_time_ms=100.0,
        fill_rate_percentage=100.0,
        slippage_bps=2.0,
        price_improvement_bps=0.0,
        error_rate_percentage=0.0,
        sample_count=10,
    )
    repo.upsert(seeded)
    # WHEN a rejection (no price, an error) is learned
    later = factories.NOW + timedelta(minutes=5)
    rejection = Observation(
        latency_ms=300.0,
        fill_rate_pct=0.0,
        slippage_bps=None,
        price_improvement_bps=None,
        is_error=True,
    )
    learned = repo.learn([Observed("zerodha", "RELIANCE", rejection, later)], alpha=0.5)
    updated = learned.get(("zerodha", "RELIANCE"))
    # THEN each average is its posterior: the seeded figure is 5 observations' worth of
    # evidence, halved by the round, then the rejection; the broker-wide posterior is the prior
    assert updated is not None
    post = factories.replayed_posterior(
        "zerodha", "RELIANCE", [rejection], alpha=0.5, before=seeded
    )
    assert updated.avg_execution_time_ms == round(post.latency.mean)
    assert updated.fill_rate_percentage == round(100 * post.fill.mean, 2)
    assert updated.error_rate_percentage == round(100 * post.error.mean, 2)
    assert updated.slippage_bps == round(post.slippage.mean, 4)
    assert 150 < updated.avg_execution_time_ms < 300  # moved from 100 towards 300
    assert 0 < updated.fill_rate_percentage < 100
    assert 20 < updated.error_rate_percentage < 50
    assert 1.0 < updated.slippage_bps <= 2.0  # not observed: only the prior pulls it
    assert updated.sample_count == 11
    assert updated.last_updated == later
    # AND the profile carries how sure it is of each factor: 3 seeded (the steady error count is
    # not discounted) + 1 observed + the
    # prior's (at most 3, the broker-wide posterior) for the error rate
    assert updated.uncertainty is not None
    assert updated.uncertainty.error_rate.weight == pytest.approx(post.error.weight)
    assert 3.5 < updated.uncertainty.error_rate.weight <= 7.0


def test_observation_for_an_unknown_broker_changes_nothing(db: Database) -> None:
    # GIVEN no broker called "ghost"
    repo = PostgresProfileRepository(db)
    # WHEN an observation arrives for it
    result = repo.learn([Observed("ghost", "RELIANCE", observation(0), factories.NOW)], alpha=0.1)
    # THEN nothing is created
    assert result == {}
    assert repo.get("ghost", "RELIANCE") is None


def make_service(
    db: Database, client: redis.Redis, prefix: str, ttl_s: int = 300
) -> ProfileService:
    guard = RedisGuard(cooldown_s=0)
    cache = RedisProfileCache(client, ttl_s=ttl_s, prefix=prefix, guard=guard)
    rates = RedisRateCounter(client, prefix=prefix, guard=guard)
    return ProfileService(
        PostgresProfileRepository(db),
        cache,
        PostgresBrokerRepository(db),
        inputs=RedisRoutingInputs(client, cache, rates, guard=guard),
    )


@pytest.fixture
def eight_profiles(db: Database) -> list[BrokerProfile]:
    seed_brokers(db, *BROKERS)
    repo = PostgresProfileRepository(db)
    profiles = [factories.profile(b) for b in sorted(BROKERS)]
    for p in profiles:
        repo.upsert(p)
    return profiles


def test_cache_miss_then_hit(
    db: Database, redis_client: redis.Redis, redis_prefix: str, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN an empty cache
    service = make_service(db, redis_client, redis_prefix)
    cache = RedisProfileCache(redis_client, ttl_s=300, prefix=redis_prefix)
    assert _cached(cache, redis_client, "RELIANCE", BROKERS) == {}
    # WHEN the profiles are read twice
    first = service.profiles_for("RELIANCE")
    # THEN the first read fills the cache with a 5-minute TTL and the second is served from it
    assert first == eight_profiles
    assert 295 <= redis_client.ttl(f"{redis_prefix}profile:zerodha:RELIANCE") <= 300
    with db.connection() as conn:
        conn.execute("UPDATE broker_execution_profiles SET slippage_bps = 99")
    assert service.profiles_for("RELIANCE") == eight_profiles


def test_cache_entries_expire(
    db: Database, redis_client: redis.Redis, redis_prefix: str, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN a cache with a 1-second TTL, filled
    service = make_service(db, redis_client, redis_prefix, ttl_s=1)
    service.profiles_for("RELIANCE")
    with db.connection() as conn:
        conn.execute("UPDATE broker_execution_profiles SET slippage_bps = 7")
    # WHEN the TTL passes
    time.sleep(1.2)
    # THEN the next read comes from Postgres
    assert {p.slippage_bps for p in service.profiles_for("RELIANCE")} == {7.0}


def test_profile_write_refreshes_the_cache(
    db: Database, redis_client: redis.Redis, redis_prefix: str, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN a filled cache
    service = make_service(db, redis_client, redis_prefix)
    service.profiles_for("RELIANCE")
    repo = PostgresProfileRepository(db)
    # WHEN an observation is applied and the service stores the result
    learned = repo.learn(
        [Observed("zerodha", "RELIANCE", observation(0), factories.NOW)], alpha=0.5
    )
    updated = learned.get(("zerodha", "RELIANCE"))
    assert updated is not None
    service.store([updated])
    # THEN the cached profile is the new one, and an older copy cannot overwrite it
    cache = RedisProfileCache(redis_client, ttl_s=300, prefix=redis_prefix)
    assert _cached(cache, redis_client, "RELIANCE", ["zerodha"])["zerodha"] == updated
    [stale] = [p for p in eight_profiles if p.broker_id == "zerodha"]
    cache.put_many("RELIANCE", {"zerodha": stale})
    assert _cached(cache, redis_client, "RELIANCE", ["zerodha"])["zerodha"] == updated


def test_a_symbol_without_profiles_is_not_cached_so_its_first_rows_are_seen_at_once(
    db: Database, redis_client: redis.Redis, redis_prefix: str, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN brokers with no profile for TCS (a day-one symbol, routed on priors)
    service = make_service(db, redis_client, redis_prefix)
    # WHEN TCS is read
    assert service.profiles_for("TCS") == []
    # THEN no absence is cached (it would hide the rows the first fills create for the TTL)
    cache = RedisProfileCache(redis_client, ttl_s=300, prefix=redis_prefix)
    assert _cached(cache, redis_client, "TCS", BROKERS) == {}
    # AND once a broker learned TCS, the next read has every broker: it and the others pooled
    PostgresProfileRepository(db).upsert(factories.profile("zerodha", symbol="TCS"))
    assert {p.broker_id for p in service.profiles_for("TCS")} == set(BROKERS)


def test_profile_read_answers_from_postgres_when_redis_is_stopped(
    db: Database, redis_prefix: str, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN a service whose Redis is filled and then stopped
    server = EmbeddedRedis().start()
    client = redis.Redis.from_url(server.url, socket_timeout=0.2, socket_connect_timeout=0.2)
    service = make_service(db, client, redis_prefix)
    service.profiles_for("RELIANCE")
    server.stop()
    # WHEN profiles are read, alone and with the rate counts
    profiles = service.profiles_for("RELIANCE")
    with_counts = service.profiles_and_counts("RELIANCE")
    # THEN Postgres answers with every profile, and nothing counts against a rate limit
    assert profiles == eight_profiles
    assert with_counts == (eight_profiles, {})
    client.close()


def test_routing_reads_profiles_and_rate_counts_together(
    db: Database, redis_client: redis.Redis, redis_prefix: str, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN a warm cache and two orders sent to zerodha this second
    service = make_service(db, redis_client, redis_prefix)
    service.profiles_for("RELIANCE")
    RedisRateCounter(redis_client, prefix=redis_prefix).hit(["zerodha", "zerodha"])
    # WHEN routing reads its inputs
    profiles, counts = service.profiles_and_counts("RELIANCE")
    # THEN it gets the cached profiles and the counts
    assert profiles == eight_profiles
    assert counts == {"zerodha": 2}


def test_settings_point_the_cache_at_the_key_prefix(settings: Settings) -> None:
    # GIVEN the test settings
    # WHEN a cache is built from them
    cache = RedisProfileCache(
        redis.Redis.from_url(settings.redis_url),
        ttl_s=settings.profile_cache_ttl_s,
        prefix=settings.redis_key_prefix,
    )
    # THEN its keys carry the prefix and follow profile:{broker}:{symbol}
    assert (
        cache.key("zerodha", "RELIANCE") == f"{settings.redis_key_prefix}profile:zerodha:RELIANCE"
    )
    assert settings.profile_cache_ttl_s == 300
    assert Decimal(str(settings.ewma_alpha)) == Decimal("0.02")


def test_a_broker_new_to_a_symbol_starts_from_its_broker_wide_posterior(db: Database) -> None:
    # GIVEN zerodha trading RELIANCE, and upstox with no RELIANCE profile that rejected 8 of
    # its last 10 TCS children
    seed_brokers(db, "zerodha", "upstox")
    repo = PostgresProfileRepository(db)
    template = factories.profile("zerodha", order_book_depth=12_345, last_price=1295.0)
    repo.upsert(template)
    outcomes = [
        Observed("upstox", "TCS", Observation(is_error=k < 8, fill_rate_pct=0.0), factories.NOW)
        for k in range(10)
    ]
    repo.learn(outcomes, alpha=0.02)
    # WHEN RELIANCE's profiles are read
    profiles = repo.list_for_symbol("RELIANCE")
    # THEN upstox has one: its broker-wide posterior, the symbol's market figures, no samples
    assert [p.broker_id for p in profiles] == ["upstox", "zerodha"]
    pooled = profiles[0]
    assert pooled.sample_count == 0
    assert pooled.uncertainty is not None
    assert pooled.uncertainty.pooled
    assert pooled.error_rate_percentage > 40.0  # what upstox does elsewhere, not the day one 2 %
    assert pooled.uncertainty.error_rate.weight <= 3.0  # worth at most 3 observations
    assert pooled.order_book_depth == 12_345
    assert pooled.last_price == 1295.0
    upstox = PostgresBrokerRepository(db).get("upstox")
    assert upstox is not None
    assert pooled.fee_schedule == upstox.fee_schedule
    # AND a broker nobody observed starts from the documented day-one priors
    seed_brokers(db, "dhan")
    fresh = next(p for p in repo.list_for_symbol("RELIANCE") if p.broker_id == "dhan")
    assert fresh.error_rate_percentage == pytest.approx(2.0)
    assert fresh.fill_rate_percentage == pytest.approx(95.0)
    assert fresh.slippage_bps == pytest.approx(1.0)
    # AND a symbol no broker has a profile for stays unknown
    assert repo.list_for_symbol("INFY") == []


def test_routing_works_on_a_pooled_profile_before_its_first_fill(db: Database) -> None:
    # GIVEN RELIANCE traded at zerodha only, and upstox known nowhere (day one)
    seed_brokers(db, "zerodha", "upstox")
    repo = PostgresProfileRepository(db)
    repo.upsert(factories.profile("zerodha", last_price=1295.0))
    profiles = repo.list_for_symbol("RELIANCE")
    # WHEN an order is routed on them, greedily and exploring
    order = factories.order(quantity=100)
    greedy = decide_route(order, profiles, now=factories.NOW)
    explored = {
        decide_route(order, profiles, now=factories.NOW, explore_seed=s).allocations[0].broker_id
        for s in range(40)
    }
    # THEN upstox is eligible (scored, no exclusion) before its first fill
    [score] = [b for b in greedy.broker_scores if b.broker_id == "upstox"]
    assert score.exclusion_reason is None
    assert explored <= {"zerodha", "upstox"}


def test_day_one_profiles_are_every_broker_priors_over_the_template(
    db: Database, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN brokers with no profile for TCS and a template of TCS's market figures
    from shared.domain.day_one import market_template
    from shared.domain.market import MarketStatistics

    stats = MarketStatistics(
        symbol="TCS",
        last_price=3410.25,
        spread_bps=3.0,
        order_book_depth=18_000,
        volume=420_000,
        observed_at=factories.NOW,
    )
    # WHEN the day-one profiles are read
    profiles = PostgresProfileRepository(db).day_one("TCS", market_template(stats, factories.NOW))
    # THEN every enabled broker has one, pooled from its broker-wide posterior, with the
    # template's market figures and no samples of its own; nothing is stored
    assert sorted(p.broker_id for p in profiles) == sorted(BROKERS)
    for p in profiles:
        assert p.symbol == "TCS"
        assert p.sample_count == 0
        assert p.uncertainty is not None
        assert p.uncertainty.pooled
        assert p.last_price == 3410.25
        assert p.order_book_depth == 18_000
        assert p.market_updated_at == factories.NOW
    assert PostgresProfileRepository(db).list_for_symbol("TCS") == []


def test_market_updated_at_round_trips_and_the_statistics_refresh_sets_it(
    db: Database, eight_profiles: list[BrokerProfile]
) -> None:
    # GIVEN profiles whose market figures were never refreshed
    from shared.adapters.postgres.market import PostgresMarketStatistics
    from shared.domain.market import MarketStatistics

    repo = PostgresProfileRepository(db)
    assert repo.get("zerodha", "RELIANCE").market_updated_at is None  # type: ignore[union-attr]
    # WHEN the statistics refresh writes RELIANCE's figures from a quote stamped 09:29
    stamped = factories.NOW - timedelta(minutes=1)
    PostgresMarketStatistics(db).apply(
        [
            MarketStatistics(
                symbol="RELIANCE",
                last_price=1295.4,
                spread_bps=2.0,
                order_book_depth=60_000,
                volume=1_800_000,
                observed_at=stamped,
            )
        ]
    )
    # THEN every broker's RELIANCE profile carries the quote's time
    assert {p.market_updated_at for p in repo.list_for_symbol("RELIANCE")} == {stamped}
