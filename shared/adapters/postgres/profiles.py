"""Broker execution profiles in Postgres, including the one-statement moving-average update."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from shared.adapters.postgres.pool import Database
from shared.domain.models import BrokerProfile, BrokerStatus, FeeSchedule, OrderType
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
       b.supported_order_types, b.lot_size, b.freeze_quantity, b.rate_limit_per_s, b.fee_schedule
"""
_PROFILE_SELECT = (
    _PROFILE_COLUMNS + "FROM broker_execution_profiles p JOIN brokers b USING (broker_id)\n"
)

SELECT_FOR_SYMBOL = _PROFILE_SELECT + "WHERE p.symbol = %s AND b.enabled ORDER BY p.broker_id"
SELECT_ONE = _PROFILE_SELECT + "WHERE p.broker_id = %s AND p.symbol = %s"

UPSERT = """
INSERT INTO broker_execution_profiles (broker_id, symbol, avg_execution_time_ms,
    fill_rate_percentage, price_improvement_bps, slippage_bps, current_spread_bps,
    order_book_depth, recent_volume, max_order_size, min_order_size, status, response_time_ms,
    error_rate_percentage, last_updated, sample_count, volatility_bps, last_price)
VALUES (%(broker_id)s, %(symbol)s, %(avg_execution_time_ms)s, %(fill_rate_percentage)s,
    %(price_improvement_bps)s, %(slippage_bps)s, %(current_spread_bps)s, %(order_book_depth)s,
    %(recent_volume)s, %(max_order_size)s, %(min_order_size)s, %(status)s, %(response_time_ms)s,
    %(error_rate_percentage)s, %(last_updated)s, %(sample_count)s, %(volatility_bps)s,
    %(last_price)s)
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
    last_price = EXCLUDED.last_price, updated_at = CURRENT_TIMESTAMP
"""

# One statement per observation: the row lock taken by the upsert serialises concurrent writers,
# and each reads the value the previous one committed, so no update is lost (no read-modify-write
# in the application). An observation of NULL leaves that average unchanged; an outcome of NULL
# (an acknowledgement) leaves the error rate and the sample count alone. One for a broker we do
# not know inserts nothing (rather than failing the batch it came in), and one about a child's
# placement is learned only while that child is not yet stored as placed, so recording the same
# placement twice cannot teach it twice.
LEARN = """
INSERT INTO broker_execution_profiles AS p (broker_id, symbol, avg_execution_time_ms,
    fill_rate_percentage, slippage_bps, price_improvement_bps, response_time_ms,
    error_rate_percentage, sample_count, last_updated)
SELECT %(broker_id)s::varchar, %(symbol)s::varchar,
    %(latency)s::numeric, %(fill)s::numeric, %(slip)s::numeric, %(pi)s::numeric,
    %(ack)s::numeric, %(err)s::numeric, CASE WHEN %(err)s::numeric IS NULL THEN 0 ELSE 1 END,
    %(at)s
WHERE EXISTS (SELECT 1 FROM brokers WHERE broker_id = %(broker_id)s::varchar)
  AND NOT EXISTS (SELECT 1 FROM child_orders WHERE child_order_id = %(child)s::varchar
                  AND status <> 'PENDING')
ON CONFLICT (broker_id, symbol) DO UPDATE SET
    avg_execution_time_ms = CASE
        WHEN EXCLUDED.avg_execution_time_ms IS NULL THEN p.avg_execution_time_ms
        WHEN p.avg_execution_time_ms IS NULL THEN EXCLUDED.avg_execution_time_ms
        ELSE round((1 - %(a)s::numeric) * p.avg_execution_time_ms
                   + %(a)s::numeric * EXCLUDED.avg_execution_time_ms) END,
    fill_rate_percentage = CASE
        WHEN EXCLUDED.fill_rate_percentage IS NULL THEN p.fill_rate_percentage
        WHEN p.fill_rate_percentage IS NULL THEN EXCLUDED.fill_rate_percentage
        ELSE (1 - %(a)s::numeric) * p.fill_rate_percentage
             + %(a)s::numeric * EXCLUDED.fill_rate_percentage END,
    slippage_bps = CASE
        WHEN EXCLUDED.slippage_bps IS NULL THEN p.slippage_bps
        WHEN p.slippage_bps IS NULL THEN EXCLUDED.slippage_bps
        ELSE (1 - %(a)s::numeric) * p.slippage_bps + %(a)s::numeric * EXCLUDED.slippage_bps END,
    price_improvement_bps = CASE
        WHEN EXCLUDED.price_improvement_bps IS NULL THEN p.price_improvement_bps
        WHEN p.price_improvement_bps IS NULL THEN EXCLUDED.price_improvement_bps
        ELSE (1 - %(a)s::numeric) * p.price_improvement_bps
             + %(a)s::numeric * EXCLUDED.price_improvement_bps END,
    response_time_ms = CASE
        WHEN EXCLUDED.response_time_ms IS NULL THEN p.response_time_ms
        WHEN p.response_time_ms IS NULL THEN EXCLUDED.response_time_ms
        ELSE round((1 - %(a)s::numeric) * p.response_time_ms
                   + %(a)s::numeric * EXCLUDED.response_time_ms) END,
    error_rate_percentage = CASE
        WHEN EXCLUDED.error_rate_percentage IS NULL THEN p.error_rate_percentage
        ELSE (1 - %(a)s::numeric) * COALESCE(p.error_rate_percentage, 0)
             + %(a)s::numeric * EXCLUDED.error_rate_percentage END,
    sample_count = p.sample_count + EXCLUDED.sample_count,
    last_updated = GREATEST(p.last_updated, EXCLUDED.last_updated),
    updated_at = CURRENT_TIMESTAMP
"""
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
    }


def _learn_params(observed: Observed, alpha: float) -> dict[str, Any]:
    # Clamped to the column ranges: one absurd report must not fail the statement.
    observation = observed.observation
    return {
        "broker_id": observed.broker_id,
        "symbol": observed.symbol,
        "latency": _clamp(observation.latency_ms, 0, MAX_MS),
        "fill": _clamp(observation.fill_rate_pct, 0, 100),
        "slip": _clamp(observation.slippage_bps, -MAX_BPS, MAX_BPS),
        "pi": _clamp(observation.price_improvement_bps, -MAX_BPS, MAX_BPS),
        "ack": _clamp(observation.response_time_ms, 0, MAX_MS),
        "err": observation.error_rate_sample_pct,
        "child": observed.child_order_id,
        "a": alpha,
        "at": _naive_utc(observed.observed_at),
    }


def send_learning(
    conn: psycopg.Connection[dict[str, Any]], observed: Sequence[Observed], *, alpha: float
) -> psycopg.Cursor[dict[str, Any]]:
    """Send the moving-average updates of ``observed`` and the read-back of the profiles.

    Profiles are updated in key order, so transactions that learn about several profiles cannot
    deadlock on them; each profile's observations keep their order, so the result is the one of
    applying them one at a time. Inside ``conn.pipeline()`` everything goes in one round trip.

    Returns
    -------
    psycopg.Cursor
        The touched profiles, for :func:`learned_profiles` (read it after the pipeline's sync).
    """
    by_profile: dict[ProfileKey, list[Observed]] = defaultdict(list)
    for item in observed:
        by_profile[(item.broker_id, item.symbol)].append(item)
    keys = sorted(by_profile)
    conn.cursor().executemany(
        LEARN, [_learn_params(item, alpha) for key in keys for item in by_profile[key]]
    )
    return conn.execute(SELECT_MANY, ([b for b, _ in keys], [s for _, s in keys]))


def learned_profiles(cursor: psycopg.Cursor[dict[str, Any]]) -> dict[ProfileKey, BrokerProfile]:
    """The profiles read back by :func:`send_learning`, by ``(broker_id, symbol)``."""
    return {(r["broker_id"], r["symbol"]): profile_from_row(r) for r in cursor.fetchall()}


class PostgresProfileRepository:
    """:class:`shared.ports.ProfileRepository` over ``broker_execution_profiles``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_for_symbol(self, symbol: str) -> list[BrokerProfile]:
        """Profiles of every enabled broker for ``symbol``, by broker id."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_FOR_SYMBOL, (symbol,)).fetchall()
        return [profile_from_row(r) for r in rows]

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
