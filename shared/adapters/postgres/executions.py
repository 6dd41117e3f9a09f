"""Execution reports in Postgres: stored once; child state and profile change in the same commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from shared.adapters.postgres.orders import CHILD_COLUMNS, child_from_row
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import learned_profiles, send_learning
from shared.adapters.postgres.quarantine import INSERT_QUARANTINED, quarantine_params
from shared.domain.errors import DataUnavailableError
from shared.domain.models import BrokerProfile
from shared.ports import (
    BatchFold,
    ChildStateUpdate,
    ExecutionPlan,
    ExecutionRecord,
    Observed,
    ProfileKey,
    QuarantinedReport,
)

# execution_metrics is partitioned by time, so the report key's uniqueness lives in
# execution_report_keys (V012): the key is inserted first and the metrics row only with it. Two
# transactions storing one key serialise on the key's index entry, like on a unique index.
INSERT_ONCE = """
WITH k AS (
    INSERT INTO execution_report_keys (report_key) VALUES (%(report_key)s)
    ON CONFLICT (report_key) DO NOTHING
    RETURNING report_key
)
INSERT INTO execution_metrics (order_id, broker_id, symbol, execution_latency_ms, slippage_bps,
    price_improvement_bps, fill_rate, execution_quality_score, market_conditions, user_id,
    child_order_id, report_key, status, filled_quantity, fill_price, charges_inr)
SELECT %(order_id)s, %(broker_id)s, %(symbol)s, %(latency)s, %(slippage)s, %(pi)s, %(fill_rate)s,
    %(quality)s, %(market)s, %(user_id)s, %(child_order_id)s, k.report_key, %(status)s,
    %(filled)s, %(fill_price)s, %(charges)s
FROM k
RETURNING id
"""

# A batch's metrics rows in ONE statement (column arrays, unnest): a statement per row cost
# Postgres a parse, a plan and a partition routing each, most of a batch's server time
# (docs/capacity.md, "MSK"). The fold never plans one report key twice in a batch.
INSERT_MANY = """
WITH i AS MATERIALIZED (
    SELECT * FROM unnest(%(report_key)b::text[], %(order_id)b::text[], %(broker_id)b::text[],
        %(symbol)b::text[], %(latency)b::bigint[], %(slippage)b::numeric[], %(pi)b::numeric[],
        %(fill_rate)b::numeric[], %(quality)b::numeric[], %(market)b::jsonb[],
        %(user_id)b::text[], %(child_order_id)b::text[], %(status)b::text[],
        %(filled)b::bigint[], %(fill_price)b::numeric[], %(charges)b::numeric[])
        AS t(report_key, order_id, broker_id, symbol, latency, slippage, pi, fill_rate, quality,
            market, user_id, child_order_id, status, filled, fill_price, charges)
), k AS (
    INSERT INTO execution_report_keys (report_key) SELECT report_key FROM i
    ON CONFLICT (report_key) DO NOTHING
    RETURNING report_key
)
INSERT INTO execution_metrics (order_id, broker_id, symbol, execution_latency_ms, slippage_bps,
    price_improvement_bps, fill_rate, execution_quality_score, market_conditions, user_id,
    child_order_id, report_key, status, filled_quantity, fill_price, charges_inr)
SELECT i.order_id, i.broker_id, i.symbol, i.latency, i.slippage, i.pi, i.fill_rate, i.quality,
    i.market, i.user_id, i.child_order_id, k.report_key, i.status, i.filled, i.fill_price,
    i.charges
FROM i JOIN k USING (report_key)
"""

# Children are locked in id order, so two batches that share children never deadlock.
LOCK_CHILDREN = (
    f"SELECT {CHILD_COLUMNS} FROM child_orders c JOIN orders o USING (order_id) "
    "WHERE c.child_order_id = ANY(%s) ORDER BY c.child_order_id FOR UPDATE OF c"
)
STORED_KEYS = "SELECT report_key FROM execution_report_keys WHERE report_key = ANY(%s)"
FIND_CHILD_IDS = """
SELECT c.broker_id, c.broker_order_id, c.child_order_id
FROM child_orders c JOIN unnest(%s::text[], %s::text[]) AS k(broker_id, broker_order_id)
    ON c.broker_id = k.broker_id AND c.broker_order_id = k.broker_order_id
"""

# One statement per batch, not one per child: a batch of 100 reports is then a handful of
# statements for Postgres to parse, plan and execute (docs/capacity.md, "MSK").
UPDATE_CHILD_STATES = """
UPDATE child_orders c SET status = u.status, filled_quantity = u.filled,
    average_price = u.average, broker_order_id = COALESCE(c.broker_order_id, u.broker_order_id),
    updated_at = now()
FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::numeric[], %s::text[])
    AS u(child_order_id, status, filled, average, broker_order_id)
WHERE c.child_order_id = u.child_order_id
"""

# An order is COMPLETED when none of its children can fill any more, and OVERFILLED when its
# children filled more than it asked for: a broker that timed out (its quantity went to the next
# broker) and then filled anyway. That fill is real, so it is stored; the status makes it visible.
UPDATE_ORDER_STATUS = """
UPDATE orders o SET status = CASE
        WHEN (SELECT COALESCE(sum(c.filled_quantity), 0) FROM child_orders c
              WHERE c.order_id = o.order_id) > o.quantity THEN 'OVERFILLED'
        WHEN NOT EXISTS (SELECT 1 FROM child_orders c WHERE c.order_id = o.order_id
                         AND c.status IN ('PENDING', 'PLACED', 'PARTIALLY_FILLED')) THEN 'COMPLETED'
        ELSE o.status END,
    updated_at = now()
WHERE o.order_id = ANY(%s)
"""


# Two batches finishing different children of one order each lock only their own children, so
# UPDATE_ORDER_STATUS alone could read the other's children from before its commit in both (each
# statement's snapshot) and leave the order unfinished for good. Its rows locked first, in id
# order, the second batch's UPDATE starts after the first committed and sees every child.
LOCK_ORDERS = "SELECT order_id FROM orders WHERE order_id = ANY(%s) ORDER BY order_id FOR UPDATE"


def _bounded(value: float | None, limit: float, places: int) -> float | None:
    # DECIMAL(8,4) holds |x| < 10,000: clamp rather than fail on an absurd but valid report.
    if value is None:
        return None
    return round(max(-limit, min(limit, value)), places)


def record_params(record: ExecutionRecord) -> dict[str, Any]:
    """Column values of an ``execution_metrics`` row."""
    return {
        "order_id": record.order_id,
        "broker_id": record.broker_id,
        "symbol": record.symbol,
        "latency": record.execution_latency_ms,
        "slippage": _bounded(record.slippage_bps, 9999.9999, 4),
        "pi": _bounded(record.price_improvement_bps, 9999.9999, 4),
        "fill_rate": round(record.fill_rate, 2),
        "quality": (
            None
            if record.execution_quality_score is None
            else round(record.execution_quality_score, 3)
        ),
        "market": Jsonb(record.market_conditions),
        "user_id": record.user_id,
        "child_order_id": record.child_order_id,
        "report_key": record.report_key,
        "status": record.status,
        "filled": record.filled_quantity,
        "fill_price": record.fill_price,
        "charges": record.charges_inr,
    }


def records_columns(records: Sequence[ExecutionRecord]) -> dict[str, list[Any]]:
    """Column arrays of ``execution_metrics`` rows, for :data:`INSERT_MANY`."""
    rows = [record_params(r) for r in records]
    return {name: [row[name] for row in rows] for name in rows[0]} if rows else {}


class ReportRaceError(DataUnavailableError):
    """A report key was stored by a concurrent transaction that did not lock the same child.

    Only a report naming another child than its broker order's can do this; the batch is rolled
    back and retried, and the retry sees the key as a duplicate.
    """


class PostgresExecutionRepository:
    """:class:`shared.ports.ExecutionRepository` over ``execution_metrics`` and ``child_orders``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, record: ExecutionRecord) -> bool:
        """Insert one metrics row; ``False`` when its report key is already stored."""
        with self._db.connection() as conn:
            return conn.execute(INSERT_ONCE, record_params(record)).fetchone() is not None

    def find_child_ids(
        self, broker_orders: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Our child order ids of ``(broker_id, broker_order_id)`` pairs, in one query."""
        if not broker_orders:
            return {}
        brokers, orders = zip(*broker_orders, strict=True)
        with self._db.connection() as conn:
            rows = conn.execute(FIND_CHILD_IDS, (list(brokers), list(orders))).fetchall()
        return {(r["broker_id"], r["broker_order_id"]): r["child_order_id"] for r in rows}

    def applied_keys(self, report_keys: Collection[str]) -> set[str]:
        """Those of ``report_keys`` whose report is applied (its metrics row is stored)."""
        if not report_keys:
            return set()
        with self._db.connection() as conn:
            rows = conn.execute(STORED_KEYS, (list(report_keys),)).fetchall()
        return {r["report_key"] for r in rows}

    def track_batch(
        self,
        child_order_ids: Collection[str],
        report_keys: Collection[str],
        fold: BatchFold,
        *,
        alpha: float,
    ) -> dict[ProfileKey, BrokerProfile]:
        """Fold a batch of reports into their children in ONE transaction, children locked.

        ``fold`` sees every child as committed by all earlier reports (the row locks serialise
        batches that share a child, so cumulative-to-delta arithmetic never double counts) and
        the report keys already stored, and returns the plans to store and the reports to
        quarantine, in report order. Then, in one pipelined round trip: the quarantined
        reports, the metrics rows, each child's final state, the orders'
        status, and every observation folded into its profile by the one-statement moving
        average, in report order per profile (profiles in key order, so concurrent batches
        cannot deadlock on them). A crash can never leave a report stored but not learned from.

        Returns
        -------
        dict[ProfileKey, BrokerProfile]
            The profiles that learned something, as committed.

        Raises
        ------
        ReportRaceError
            A metrics row already existed although its key was not stored when checked.
        DataUnavailableError
            Postgres is unreachable.
        """
        with self._db.connection() as conn:
            with conn.pipeline():
                locked = conn.execute(LOCK_CHILDREN, (sorted(set(child_order_ids)),))
                stored = conn.execute(STORED_KEYS, (list(report_keys),))
            children = {r["child_order_id"]: child_from_row(r) for r in locked.fetchall()}
            folded = fold(children, {r["report_key"] for r in stored.fetchall()})
            held = [q for q in folded if isinstance(q, QuarantinedReport)]
            plans = [p for p in folded if isinstance(p, ExecutionPlan)]
            if held:
                conn.cursor().executemany(INSERT_QUARANTINED, [quarantine_params(q) for q in held])
            if not plans:
                return {}
            finals = {p.child_state.child_order_id: p.child_state for p in plans if p.child_state}
            orders = sorted({children[c].order_id for c in finals})
            observed = [
                Observed(p.record.broker_id, p.record.symbol, p.observation, p.observed_at)
                for p in plans
                if p.observation is not None
            ]
            with conn.pipeline():
                inserts = conn.execute(INSERT_MANY, records_columns([p.record for p in plans]))
                if finals:
                    conn.execute(
                        UPDATE_CHILD_STATES, _state_columns([finals[c] for c in sorted(finals)])
                    )
                    conn.execute(LOCK_ORDERS, (orders,))
                    conn.execute(UPDATE_ORDER_STATUS, (orders,))
                profiles = send_learning(conn, observed, alpha=alpha)
            # Read after the pipeline's sync: before it, the insert has counted nothing yet.
            if inserts.rowcount != len(plans):
                raise ReportRaceError("a report key was stored concurrently; retry the batch")
            return learned_profiles(profiles)


def _state_columns(states: list[ChildStateUpdate]) -> tuple[list[Any], ...]:
    # Column arrays for UPDATE_CHILD_STATES, children in id order (the order they were locked).
    return (
        [s.child_order_id for s in states],
        [s.status.value for s in states],
        [s.filled_quantity for s in states],
        [s.average_price for s in states],
        [s.broker_order_id for s in states],
    )
