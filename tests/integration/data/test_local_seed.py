"""Local mode's seed keeps what a previous run learned, unless it has gone stale."""

from __future__ import annotations

from datetime import timedelta

from local import seed
from shared.adapters.brokers.paper import PaperBehaviour
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import PostgresProfileRepository
from shared.domain.execution import ProfileObservation
from shared.ports import Observed
from tests import factories


def test_restart_keeps_fresh_learned_profiles_and_reseeds_stale_ones(db: Database) -> None:
    # GIVEN a seeded database whose zerodha RELIANCE profile learned from a slow fill
    start = factories.NOW
    day = timedelta(days=1)
    brokers, written = seed.seed(db, start, keep_for=day)
    repo = PostgresProfileRepository(db)
    slow_fill = ProfileObservation(
        latency_ms=5_000,
        fill_rate_pct=100,
        slippage_bps=None,
        price_improvement_bps=None,
        is_error=False,
    )
    learned = repo.learn([Observed("zerodha", "RELIANCE", slow_fill, start)], alpha=0.5).get(
        ("zerodha", "RELIANCE")
    )
    assert learned is not None
    # WHEN local mode restarts an hour later, and again two days later
    _, rewritten_soon = seed.seed(db, start + timedelta(hours=1), keep_for=day)
    after_an_hour = repo.get("zerodha", "RELIANCE")
    _, rewritten_later = seed.seed(db, start + 2 * day, keep_for=day)
    after_two_days = repo.get("zerodha", "RELIANCE")
    # THEN the hour-old profiles (all of them) are kept with what was learned, and two days
    # later every profile starts again from the seed, fresh
    assert (brokers, written) == (5, 110)
    assert rewritten_soon == 0
    assert after_an_hour == learned
    assert rewritten_later == 110
    assert after_two_days is not None
    assert after_two_days.sample_count < learned.sample_count
    assert after_two_days.last_updated > start + day


def test_restart_keeps_an_operators_changed_paper_behaviour(db: Database) -> None:
    # GIVEN a seeded database where an operator made zerodha reject half its orders (snake_case
    # spelling), dropped one of its seeded keys, and disabled dhan
    start = factories.NOW
    seed.seed(db, start)
    brokers = PostgresBrokerRepository(db)
    zerodha = brokers.get("zerodha")
    dhan = brokers.get("dhan")
    assert zerodha is not None
    assert dhan is not None
    changed = {
        k: v for k, v in zerodha.adapter_config.items() if k not in ("rejectRate", "ackLatencyMs")
    }
    brokers.upsert(zerodha.model_copy(update={"adapter_config": {**changed, "reject_rate": 0.5}}))
    brokers.upsert(dhan.model_copy(update={"enabled": False}))
    # WHEN local mode restarts
    seed.seed(db, start + timedelta(hours=1))
    # THEN the changed behaviour and the disabled broker survive, the dropped key comes back
    # from the seed, the operator's snake_case key is not shadowed by the seeded camelCase
    # one, and an untouched broker is as seeded
    after = brokers.get("zerodha")
    assert after is not None
    behaviour = PaperBehaviour.model_validate(after.adapter_config)
    assert behaviour.reject_rate == 0.5
    assert "rejectRate" not in after.adapter_config
    assert behaviour.ack_latency_ms == seed.BROKERS["zerodha"]["behaviour"]["ackLatencyMs"]
    assert [b.broker_id for b in brokers.list_enabled()] == [
        "angelone",
        "fyers",
        "upstox",
        "zerodha",
    ]
    upstox = brokers.get("upstox")
    assert upstox is not None
    assert upstox.adapter_config == seed.BROKERS["upstox"]["behaviour"]
