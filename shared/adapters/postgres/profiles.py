"""Broker execution profiles in Postgres, including the one-statement moving-average update."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.adapters.postgres.pool import Database
from shared.domain.day_one import trades_symbol
from shared.domain.execution import ProfileObservation
from shared.domain.learning import (
    BatchLearner,
    Evidence,
    declared_evidence,
    in_outage,
    learned_fields,
    symbol_posterior,
    uncertainty,
)
from shared.domain.models import (
    BrokerProfile,
    BrokerStatus,
    FeeSchedule,
    OrderType,
    ProfileUncertainty,
)
from shared.ports import Observed, ProfileKey

# Priors for a profile column that has never been measured: a new profile starts cautious
# (slow, not quite reliable) and its sample_count of 0 lowers the engine's confidence.
PRIOR_EXECUTION_TIME_MS = 1000
PRIOR_FILL_RATE_PCT = 90.0

_PROFILE_COLUMNS = """
SELECT p.broker_id, p.symbol, p.avg_execution_time_ms, p.fill_rate_percentage,
       p.price_improvement_bps, p.slippage_bps, p.current_spread_bps, p.order_book_depth,
       p.recent_volume, p.max_order_size, p.min_order_size,
       -- An operator's MAINTENANCE or SUSPENDED (V008) overrides every profile's own status.
       CASE WHEN b.routing_status = 'ACTIVE' THEN p.status ELSE b.routing_status END AS status,
       p.response_time_ms,
       p.error_rate_percentage, p.last_updated, p.sample_count, p.volatility_bps, p.last_price,
       p.uncertainty, p.market_updated_at,
       b.supported_order_types, b.lot_size, b.freeze_quantity, b.rate_limit_per_s, b.fee_schedule
"""
_PROFILE_SELECT = (
    _PROFILE_COLUMNS + "FROM broker_execution_profiles p JOIN brokers b USING (broker_id)\n"
)

SELECT_FOR_SYMBOL = _PROFILE_SELECT + "WHERE p.symbol = %s AND b.enabled ORDER BY p.broker_id"
SELECT_MISSING = """
SELECT b.broker_id, b.supported_order_types, b.lot_size, b.freeze_quantity, b.rate_limit_per_s,
       b.fee_schedule, e.evidence, b.adapter, b.adapter_config,
       -- An operator's MAINTENANCE or SUSPENDED overrides; else the broker's latest status.
       CASE WHEN b.routing_status = 'ACTIVE' THEN
           (SELECT q.status FROM broker_execution_profiles q WHERE q.broker_id = b.broker_id
            ORDER BY q.last_updated DESC NULLS LAST LIMIT 1)
       ELSE b.routing_status END AS status
FROM brokers b LEFT JOIN broker_evidence e USING (broker_id)
WHERE b.enabled AND NOT EXISTS (
    SELECT 1 FROM broker_execution_profiles p WHERE p.broker_id = b.broker_id AND p.symbol = %s)
ORDER BY b.broker_id
"""
SELECT_ONE = _PROFILE_SELECT + "WHERE p.broker_id = %s AND p.symbol = %s"

UPSERT = """
INSERT INTO broker_execution_profiles (broker_id, symbol, avg_execution_time_ms,
    fill_rate_percentage, price_improvement_bps, slippage_bps, current_spread_bps,
    order_book_depth, recent_volume, max_order_size, min_order_size, status, response_time_ms,
    error_rate_percentage, last_updated, sample_count, volatility_bps, last_price, uncertainty,
    market_updated_at)
VALUES (%(broker_id)s, %(symbol)s, %(avg_execution_time_ms)s, %(fill_rate_percentage)s,
    %(price_improvement_bps)s, %(slippage_bps)s, %(current_spread_bps)s, %(order_book_depth)s,
    %(recent_volume)s, %(max_order_size)s, %(min_order_size)s, %(status)s, %(response_time_ms)s,
    %(error_rate_percentage)s, %(last_updated)s, %(sample_count)s, %(volatility_bps)s,
    %(last_price)s, %(uncertainty)s, %(market_updated_at)s)
ON CONFLICT (broker_id, symbol) DO UPDATE SET
    avg_execution_time_ms = EXCLUDED.avg_execution_time_ms,
    fill_rate_percentage = EXCLUDED.fill_rate_percentage,
    price_improvement_bps = EXCLUDED.price_improvement_bps,
    slippage_bps = EXCLUDED.slippage_bps, current_spread_bps = EXCLUDED.current_spread_bps,
    order_book_depth = EXCLUDED.order_book_depth, recent_volume = EXCLUDED.recent_volume,
    max_order_size = EXCLUDED.max_order_size, min_order_size = EXCLUDED.min_order_size,
    status = EXCLUDED.status, response_time_ms = EXCLUDED.response_time_ms,
    error_rate_percentage = EXCLUDED.error_rate_percentage, last_updated = EXCLUDED.last_updated,
    sample_count = EXCLUDED.sample_count, volatility_bps = EXCLUDED.volatility_bps,
    last_price = EXCLUDED.last_price,
    uncertainty = COALESCE(EXCLUDED.uncertainty, broker_execution_profiles.uncertainty),
    market_updated_at = EXCLUDED.market_updated_at,
    updated_at = CURRENT_TIMESTAMP
"""

# Learning (docs/routing-engine.md, "Learning"): the rows a batch learns about are created if
# missing (a new symbol's row takes the symbol's market figures from its freshest profile), then
# locked -- broker-wide rows, then profile rows, each in key order, so concurrent writers cannot
# deadlock -- read, folded in the domain (shared.domain.learning), and written back. A row lock
# serialises writers, so no observation is lost; one about a broker we do not know creates and
# learns nothing, and one about a child's placement is learned only while that child is not yet
# stored as placed, so recording the same placement twice cannot teach it twice.
ENSURE_BROKER = """
INSERT INTO broker_evidence (broker_id)
SELECT %(broker_id)s::varchar WHERE EXISTS (SELECT 1 FROM brokers WHERE broker_id = %(broker_id)s)
ON CONFLICT (broker_id) DO NOTHING
"""
ENSURE_PROFILE = """
INSERT INTO broker_execution_profiles (broker_id, symbol, current_spread_bps, order_book_depth,
    recent_volume, volatility_bps, last_price, market_updated_at, last_updated)
SELECT %(broker_id)s::varchar, %(symbol)s::varchar, t.current_spread_bps, t.order_book_depth,
    t.recent_volume, t.volatility_bps, t.last_price, t.market_updated_at, %(at)s
FROM (SELECT 1) one LEFT JOIN LATERAL (
    SELECT * FROM broker_execution_profiles q WHERE q.symbol = %(symbol)s
    ORDER BY q.last_updated DESC NULLS LAST LIMIT 1) t ON true
WHERE EXISTS (SELECT 1 FROM brokers WHERE broker_id = %(broker_id)s)
ON CONFLICT (broker_id, symbol) DO NOTHING
"""
LOCK_BROKERS = """
SELECT broker_id, evidence, sample_count FROM broker_evidence
WHERE broker_id = ANY(%s) ORDER BY broker_id FOR UPDATE
"""
LOCK_PROFILES = (
    _PROFILE_COLUMNS
    + """, p.evidence FROM broker_execution_profiles p JOIN brokers b USING (broker_id)
WHERE (p.broker_id, p.symbol) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
ORDER BY p.broker_id, p.symbol FOR UPDATE OF p
"""
)
SYMBOL_CLOCKS = """
SELECT symbol, COALESCE(sum(sample_count), 0)::bigint AS clock FROM broker_execution_profiles
WHERE symbol = ANY(%s) GROUP BY symbol
"""
PLACED_CHILDREN = """
SELECT child_order_id FROM child_orders WHERE child_order_id = ANY(%s) AND status <> 'PENDING'
"""
# Every profile a batch learned about in ONE statement (a batch of 100 reports over many
# symbols touches up to 100 profiles); the rows are already locked, in key order, by the read.
WRITE_PROFILES = """
UPDATE broker_execution_profiles p SET
    avg_execution_time_ms = u.avg_execution_time_ms, fill_rate_percentage = u.fill,
    price_improvement_bps = u.pi, slippage_bps = u.slip, response_time_ms = u.ack,
    error_rate_percentage = u.err, sample_count = u.samples, evidence = u.evidence,
    uncertainty = u.uncertainty,
    last_updated = GREATEST(COALESCE(p.last_updated, u.at), u.at), updated_at = CURRENT_TIMESTAMP
FROM unnest(%(broker_id)s::text[], %(symbol)s::text[], %(avg_execution_time_ms)s::bigint[],
    %(fill)s::numeric[], %(err)s::numeric[], %(slip)s::numeric[], %(pi)s::numeric[],
    %(ack)s::bigint[], %(samples)s::bigint[], %(evidence)s::jsonb[], %(uncertainty)s::jsonb[],
    %(at)s::timestamp[])
    AS u(broker_id, symbol, avg_execution_time_ms, fill, err, slip, pi, ack, samples, evidence,
        uncertainty, at)
WHERE p.broker_id = u.broker_id AND p.symbol = u.symbol
"""
WRITE_BROKER = """
UPDATE broker_evidence SET evidence = %(evidence)s, sample_count = %(samples)s, updated_at = now()
WHERE broker_id = %(broker_id)s
"""
# Outages (docs/routing-engine.md, "Outages"): which brokers are in an outage episode, and the
# rows a recovery rewrites, locked in the learning's order (broker-wide row, then profiles).
SELECT_RUNS = """
SELECT broker_id, evidence FROM broker_evidence WHERE evidence ? 'outage'
    AND evidence -> 'outage' <> 'null'::jsonb ORDER BY broker_id
"""
LOCK_BROKER_PROFILES = (
    _PROFILE_COLUMNS
    + """, p.evidence FROM broker_execution_profiles p JOIN brokers b USING (broker_id)
WHERE p.broker_id = %s ORDER BY p.symbol FOR UPDATE OF p
"""
)
SELECT_MANY = (
    _PROFILE_SELECT
    + "WHERE (p.broker_id, p.symbol) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
)


# Column ranges: one absurd (but authenticated) report must not make the statement fail.
MAX_BPS = 9999.0
MAX_MS = 2_000_000_000.0


def _clamp(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else max(low, min(high, value))


def _naive_utc(moment: datetime) -> datetime:
    # The specification's columns are TIMESTAMP (no zone); we store UTC in them.
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def profile_from_row(row: dict[str, Any]) -> BrokerProfile:
    """Map a joined profile + broker row to the domain model, filling unmeasured columns."""
    last_updated = row["last_updated"] or datetime(1970, 1, 1)
    return BrokerProfile(
        broker_id=row["broker_id"],
        symbol=row["symbol"],
        avg_execution_time_ms=float(row["avg_execution_time_ms"] or PRIOR_EXECUTION_TIME_MS),
        fill_rate_percentage=float(
            PRIOR_FILL_RATE_PCT
            if row["fill_rate_percentage"] is None
            else row["fill_rate_percentage"]
        ),
        price_improvement_bps=float(row["price_improvement_bps"] or 0),
        slippage_bps=float(row["slippage_bps"] or 0),
        current_spread_bps=float(row["current_spread_bps"] or 5),
        order_book_depth=row["order_book_depth"] or 0,
        recent_volume=row["recent_volume"] or 0,
        supported_order_types=frozenset(OrderType(t) for t in row["supported_order_types"]),
        max_order_size=row["max_order_size"],
        min_order_size=row["min_order_size"],
        status=BrokerStatus(row["status"]),
        response_time_ms=float(row["response_time_ms"] or 0),
        error_rate_percentage=float(row["error_rate_percentage"] or 0),
        last_updated=last_updated.replace(tzinfo=UTC),
        sample_count=row["sample_count"],
        lot_size=row["lot_size"],
        freeze_quantity=row["freeze_quantity"],
        rate_limit_per_s=row["rate_limit_per_s"],
        fee_schedule=FeeSchedule.model_validate(row["fee_schedule"] or {}),
        volatility_bps=float(row["volatility_bps"] if row["volatility_bps"] is not None else 150),
        last_price=None if row["last_price"] is None else float(row["last_price"]),
        uncertainty=(
            ProfileUncertainty.model_validate(row["uncertainty"]) if row["uncertainty"] else None
        ),
        market_updated_at=(
            None
            if row.get("market_updated_at") is None
            else row["market_updated_at"].replace(tzinfo=UTC)
        ),
    )


def _pooled_profile(row: dict[str, Any], template: BrokerProfile, clock: int) -> BrokerProfile:
    """A symbol's profile at a broker that has none: broker-wide posterior, market template."""
    post = symbol_posterior(_evidence(row["evidence"]), None)
    return template.model_copy(
        update={
            **learned_fields(post),
            "broker_id": row["broker_id"],
            "status": BrokerStatus(row["status"] or BrokerStatus.AVAILABLE.value),
            "supported_order_types": frozenset(OrderType(t) for t in row["supported_order_types"]),
            "lot_size": row["lot_size"],
            "freeze_quantity": row["freeze_quantity"],
            "rate_limit_per_s": row["rate_limit_per_s"],
            "fee_schedule": FeeSchedule.model_validate(row["fee_schedule"] or {}),
            "max_order_size": None,
            "min_order_size": None,
            "sample_count": 0,
            "uncertainty": uncertainty(post, clock=clock, pooled=True),
        }
    )


def profile_params(profile: BrokerProfile) -> dict[str, Any]:
    """Column values of a profile for :data:`UPSERT`."""
    return {
        "broker_id": profile.broker_id,
        "symbol": profile.symbol,
        "avg_execution_time_ms": round(profile.avg_execution_time_ms),
        "fill_rate_percentage": round(profile.fill_rate_percentage, 2),
        "price_improvement_bps": round(profile.price_improvement_bps, 4),
        "slippage_bps": round(profile.slippage_bps, 4),
        "current_spread_bps": round(profile.current_spread_bps, 4),
        "order_book_depth": profile.order_book_depth,
        "recent_volume": profile.recent_volume,
        "max_order_size": profile.max_order_size,
        "min_order_size": profile.min_order_size,
        "status": profile.status.value,
        "response_time_ms": round(profile.response_time_ms),
        "error_rate_percentage": round(profile.error_rate_percentage, 2),
        "last_updated": _naive_utc(profile.last_updated),
        "sample_count": profile.sample_count,
        "volatility_bps": round(profile.volatility_bps, 4),
        "last_price": profile.last_price,
        "market_updated_at": (
            None if profile.market_updated_at is None else _naive_utc(profile.market_updated_at)
        ),
        "uncertainty": (
            None
            if profile.uncertainty is None
            else Jsonb(profile.uncertainty.model_dump(mode="json"))
        ),
    }


def _clamped(observation: ProfileObservation) -> ProfileObservation:
    # Column ranges: one absurd (but authenticated) report must not fail the batch.
    return observation.model_copy(
        update={
            "latency_ms": _clamp(observation.latency_ms, 0, MAX_MS),
            "slippage_bps": _clamp(observation.slippage_bps, -MAX_BPS, MAX_BPS),
            "price_improvement_bps": _clamp(observation.price_improvement_bps, -MAX_BPS, MAX_BPS),
            "response_time_ms": _clamp(observation.response_time_ms, 0, MAX_MS),
        }
    )


def _evidence(value: Any) -> Evidence | None:
    return Evidence.model_validate(value) if value else None


def _row_evidence(row: dict[str, Any], clock: int) -> Evidence | None:
    # A row that never learned: its figures, if any (seeded or declared), are its first evidence.
    if row["evidence"]:
        return Evidence.model_validate(row["evidence"])
    if row["fill_rate_percentage"] is None:
        return None
    return declared_evidence(profile_from_row(row), clock=clock)


def _lock(
    conn: psycopg.Connection[dict[str, Any]], keys: list[ProfileKey], observed: Sequence[Observed]
) -> tuple[BatchLearner, set[str]]:
    """Create missing rows, lock every row the batch learns about, and read its evidence."""
    brokers = sorted({b for b, _ in keys})
    first: dict[ProfileKey, datetime] = {}
    for item in observed:
        first.setdefault((item.broker_id, item.symbol), item.observed_at)
    cur = conn.cursor()
    cur.executemany(ENSURE_BROKER, [{"broker_id": b} for b in brokers])
    cur.executemany(
        ENSURE_PROFILE,
        [{"broker_id": b, "symbol": s, "at": _naive_utc(first[(b, s)])} for b, s in keys],
    )
    children = [item.child_order_id for item in observed if item.child_order_id]
    # All four reads are sent before the first is read: one round trip (in a pipeline), not four.
    sent = [
        conn.execute(LOCK_BROKERS, (brokers,)),
        conn.execute(LOCK_PROFILES, ([b for b, _ in keys], [s for _, s in keys])),
        conn.execute(SYMBOL_CLOCKS, (sorted({s for _, s in keys}),)),
        conn.execute(PLACED_CHILDREN, (children,)),
    ]
    wide, rows, clocks, placed_rows = (cursor.fetchall() for cursor in sent)
    placed = {r["child_order_id"] for r in placed_rows}
    symbol_clocks = {r["symbol"]: r["clock"] for r in clocks}
    learner = BatchLearner(
        discount=0.0,
        brokers={r["broker_id"]: (_evidence(r["evidence"]), r["sample_count"]) for r in wide},
        profiles={
            (r["broker_id"], r["symbol"]): (_row_evidence(r, r["sample_count"]), r["sample_count"])
            for r in rows
        },
        clocks=symbol_clocks,
    )
    return learner, placed


def _profile_write(learner: BatchLearner, key: ProfileKey, at: datetime) -> dict[str, Any]:
    post = learner.profile_posterior(*key)
    evidence, samples = learner.profiles[key]
    fields = learned_fields(post)
    return {
        "broker_id": key[0],
        "symbol": key[1],
        "avg_execution_time_ms": round(min(fields["avg_execution_time_ms"], MAX_MS)),
        "fill": round(fields["fill_rate_percentage"], 2),
        "err": round(fields["error_rate_percentage"], 2),
        "slip": round(_clamp(fields["slippage_bps"], -MAX_BPS, MAX_BPS) or 0.0, 4),
        "pi": round(_clamp(fields["price_improvement_bps"], -MAX_BPS, MAX_BPS) or 0.0, 4),
        "ack": round(min(fields["response_time_ms"], MAX_MS)),
        "samples": samples,
        "evidence": Jsonb(evidence.model_dump(mode="json")),
        "uncertainty": Jsonb(
            uncertainty(post, clock=learner.clocks.get(key[1], 0)).model_dump(mode="json")
        ),
        "at": _naive_utc(at),
    }


def _write_profiles(conn: psycopg.Connection[dict[str, Any]], writes: list[dict[str, Any]]) -> None:
    # One statement for every row: WRITE_PROFILES unnests one array per column.
    conn.execute(WRITE_PROFILES, {name: [w[name] for w in writes] for name in writes[0]})


def send_learning(
    conn: psycopg.Connection[dict[str, Any]], observed: Sequence[Observed], *, alpha: float
) -> psycopg.Cursor[dict[str, Any]]:
    """Fold ``observed`` into the profiles' posteriors and send the read-back of the profiles.

    Rows are locked in key order (broker-wide rows first), so transactions that learn about
    several profiles cannot deadlock on them; each profile's observations keep their order.
    ``alpha`` is what one round discounts: evidence keeps ``1 - alpha`` per round.

    Returns
    -------
    psycopg.Cursor
        The touched profiles, for :func:`learned_profiles` (read it after the pipeline's sync).
    """
    keys = sorted({(item.broker_id, item.symbol) for item in observed})
    if not keys:
        return conn.execute(SELECT_MANY, ([], []))
    learner, placed = _lock(conn, keys, observed)
    learner.discount = 1.0 - alpha
    latest: dict[ProfileKey, datetime] = {}
    for item in observed:
        key = (item.broker_id, item.symbol)
        if key not in learner.profiles or item.child_order_id in placed:
            continue
        learner.learn(item.broker_id, item.symbol, _clamped(item.observation))
        latest[key] = max(latest.get(key, item.observed_at), item.observed_at)
    cur = conn.cursor()
    if latest:
        _write_profiles(conn, [_profile_write(learner, k, latest[k]) for k in sorted(latest)])
    touched = sorted({b for b, _ in latest})
    cur.executemany(
        WRITE_BROKER,
        [
            {
                "broker_id": b,
                "evidence": Jsonb(learner.brokers[b][0].model_dump(mode="json")),
                "samples": learner.brokers[b][1],
            }
            for b in touched
        ],
    )
    return conn.execute(SELECT_MANY, ([b for b, _ in keys], [s for _, s in keys]))


def learned_profiles(cursor: psycopg.Cursor[dict[str, Any]]) -> dict[ProfileKey, BrokerProfile]:
    """The profiles read back by :func:`send_learning`, by ``(broker_id, symbol)``."""
    return {(r["broker_id"], r["symbol"]): profile_from_row(r) for r in cursor.fetchall()}


def recover_broker(conn: psycopg.Connection[dict[str, Any]], broker_id: str) -> list[ProfileKey]:
    """End ``broker_id``'s runs of timeouts (it answers again) and rewrite what changed.

    Returns
    -------
    list[ProfileKey]
        The profiles whose posteriors were rewritten.
    """
    wide = conn.execute(LOCK_BROKERS, ([broker_id],)).fetchall()
    if not wide:
        return []
    rows = conn.execute(LOCK_BROKER_PROFILES, (broker_id,)).fetchall()
    symbols = sorted({r["symbol"] for r in rows})
    clocks = conn.execute(SYMBOL_CLOCKS, (symbols,)).fetchall()
    learner = BatchLearner(
        discount=1.0,
        brokers={broker_id: (_evidence(wide[0]["evidence"]), wide[0]["sample_count"])},
        profiles={
            (r["broker_id"], r["symbol"]): (_row_evidence(r, r["sample_count"]), r["sample_count"])
            for r in rows
        },
        clocks={r["symbol"]: r["clock"] for r in clocks},
    )
    changed = learner.recover(broker_id)
    # The row's own time: a recovery is not a fresh market figure, so staleness is untouched.
    updated = {(r["broker_id"], r["symbol"]): r["last_updated"] for r in rows}
    if changed:
        _write_profiles(
            conn, [_profile_write(learner, k, updated[k] or utc_epoch()) for k in changed]
        )
    conn.execute(
        WRITE_BROKER,
        {
            "broker_id": broker_id,
            "evidence": Jsonb(learner.brokers[broker_id][0].model_dump(mode="json")),
            "samples": learner.brokers[broker_id][1],
        },
    )
    return changed


def utc_epoch() -> datetime:
    """The time a row that never had one is taken to be from (the start of the epoch)."""
    return datetime(1970, 1, 1)


class PostgresProfileRepository:
    """:class:`shared.ports.ProfileRepository` over ``broker_execution_profiles``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_for_symbol(self, symbol: str) -> list[BrokerProfile]:
        """Profiles of every enabled broker for ``symbol``, by broker id.

        A broker with no profile for a symbol others trade gets one from its broker-wide
        posterior (its day-one priors when it has none) and the symbol's freshest market
        figures (docs/routing-engine.md, "Day one"); figures nothing was learned for carry
        day-one-wide beliefs. A symbol no broker has a profile for stays unknown.
        """
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_FOR_SYMBOL, (symbol,)).fetchall()
            missing = conn.execute(SELECT_MISSING, (symbol,)).fetchall() if rows else []
        profiles = [profile_from_row(r) for r in rows]
        clock = sum(p.sample_count for p in profiles)
        if missing:
            template = max(profiles, key=lambda p: p.last_updated)
            profiles.extend(_pooled_profile(r, template, clock) for r in missing)
            profiles.sort(key=lambda p: p.broker_id)
        return profiles

    def day_one(self, symbol: str, template: BrokerProfile) -> list[BrokerProfile]:
        """Profiles of every enabled broker for a symbol none has a profile for, from priors.

        A broker whose adapter names instruments by its own map (Upstox, Dhan) gets one only
        when the map has the symbol (:func:`shared.domain.day_one.trades_symbol`). Each is its
        broker's broker-wide posterior (the day-one priors when the broker never
        learned anything) over ``template``'s market figures (a fresh quote's, see
        :func:`shared.domain.day_one.market_template`), with ``sample_count`` 0 and pooled
        beliefs, so the engine routes on them with low confidence. Nothing is stored: the
        first outcome at a broker creates its row (:func:`send_learning`).
        """
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_MISSING, (symbol,)).fetchall()
        return [
            _pooled_profile(r, template, 0)
            for r in rows
            if trades_symbol(r["adapter"], r["adapter_config"] or {}, symbol)
        ]

    def brokers_in_outage(self) -> list[str]:
        """Brokers whose latest outcomes are an outage episode that has not ended, by id."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_RUNS).fetchall()
        return [r["broker_id"] for r in rows if in_outage(_evidence(r["evidence"]))]

    def recover(self, broker_id: str) -> list[ProfileKey]:
        """``broker_id`` answers again: forget its outage episode, in one transaction.

        Returns the (broker, symbol) profiles rewritten; none for a broker not in a run.
        """
        with self._db.connection() as conn:
            return recover_broker(conn, broker_id)

    def get(self, broker_id: str, symbol: str) -> BrokerProfile | None:
        """One profile or ``None``."""
        with self._db.connection() as conn:
            row = conn.execute(SELECT_ONE, (broker_id, symbol)).fetchone()
        return profile_from_row(row) if row else None

    def upsert(self, profile: BrokerProfile) -> None:
        """Create or replace a profile (seeding, market-condition refresh)."""
        with self._db.connection() as conn:
            conn.execute(UPSERT, profile_params(profile))

    def learn(
        self, observed: Sequence[Observed], *, alpha: float
    ) -> dict[ProfileKey, BrokerProfile]:
        """Fold observations into the moving averages atomically, in one round trip.

        The execution tracker does the same inside its batch transaction
        (:func:`send_learning`); this is the standalone form.

        Parameters
        ----------
        observed
            Observations in the order they happened; ``None`` fields leave their average
            unchanged, and a missing profile is created from the first observation.
        alpha
            Weight of one observation in the exponentially weighted averages, in (0, 1].

        Returns
        -------
        dict[ProfileKey, BrokerProfile]
            The updated profiles; brokers we do not know are absent (nothing is created).
        """
        with self._db.connection() as conn:
            with conn.pipeline():
                cursor = send_learning(conn, observed, alpha=alpha)
            return learned_profiles(cursor)
