"""Execution analytics of one trader: roll-ups for closed hours, raw rows for the rest.

See docs/data-layer.md, "Partitions, retention and roll-ups": daily and hourly roll-up rows of
the window and the live facts since the roll-up watermark (``execution_facts``, V012) are summed
per broker x strategy in one query, histograms merged bucket by bucket; the domain then folds
those few rows into the summary and the per-broker and per-strategy breakdowns.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.adapters.postgres.pool import Database
from shared.domain.analytics import (
    ExecutionAnalytics,
    ExecutionFacts,
    analytics_window,
    merge_facts,
)

WATERMARK = """
SELECT now() AS now,
    (SELECT rolled_through FROM execution_rollup_state WHERE name = 'hourly') AS rolled_through
"""

_COLUMNS = """broker_id, strategy, orders, ordered_quantity, executions, filled_quantity,
    latency_count, latency_sum, latency_buckets, latency_counts, slippage_count, slippage_sum,
    improvement_count, improvement_sum, charges_inr"""

WINDOW_FACTS = f"""
WITH rows AS (
    SELECT {_COLUMNS}
    FROM unnest(%(grains)s::char[], %(froms)s::timestamptz[], %(tos)s::timestamptz[])
        AS r(grain, low, high)
    JOIN LATERAL (
        SELECT {_COLUMNS} FROM execution_rollups x
        WHERE x.user_id = %(user_id)s AND x.grain = r.grain
            AND x.bucket_start >= r.low AND x.bucket_start < r.high
    ) AS x ON TRUE
    UNION ALL
    -- Rows are stamped with their transaction's start, never after now(): future partitions
    -- are pruned.
    SELECT {_COLUMNS} FROM execution_facts(%(live_from)s, now() + interval '1 second',
        %(user_id)s)
), totals AS (
    SELECT broker_id, strategy, sum(orders) AS orders, sum(ordered_quantity) AS ordered_quantity,
        sum(executions) AS executions, sum(filled_quantity) AS filled_quantity,
        sum(latency_count) AS latency_count, sum(latency_sum) AS latency_sum,
        sum(slippage_count) AS slippage_count, sum(slippage_sum) AS slippage_sum,
        sum(improvement_count) AS improvement_count, sum(improvement_sum) AS improvement_sum,
        sum(charges_inr) AS charges_inr
    FROM rows GROUP BY 1, 2
), histograms AS (
    SELECT broker_id, strategy, array_agg(k ORDER BY k) AS ks, array_agg(n ORDER BY k) AS ns
    FROM (SELECT broker_id, strategy, u.k, sum(u.n)::bigint AS n
          FROM rows, unnest(latency_buckets, latency_counts) AS u(k, n)
          GROUP BY 1, 2, 3) per_bucket
    GROUP BY 1, 2
)
SELECT t.*, h.ks, h.ns FROM totals t LEFT JOIN histograms h USING (broker_id, strategy)
"""


def _facts(row: dict[str, Any]) -> ExecutionFacts:
    return ExecutionFacts(
        broker_id=row["broker_id"],
        strategy=row["strategy"],
        orders=int(row["orders"]),
        ordered_quantity=int(row["ordered_quantity"]),
        executions=int(row["executions"]),
        filled_quantity=int(row["filled_quantity"]),
        latency_count=int(row["latency_count"]),
        latency_sum=float(row["latency_sum"]),
        latency_histogram=dict(zip(row["ks"] or (), row["ns"] or (), strict=True)),
        slippage_count=int(row["slippage_count"]),
        slippage_sum=float(row["slippage_sum"]),
        improvement_count=int(row["improvement_count"]),
        improvement_sum=float(row["improvement_sum"]),
        charges_inr=Decimal(row["charges_inr"]),
    )


class PostgresAnalyticsRepository:
    """:class:`shared.ports.AnalyticsRepository`: summary and per-broker/strategy breakdowns."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def execution_analytics(self, user_id: str, days: int) -> ExecutionAnalytics:
        """Stats of ``user_id`` over the last ``days`` days (from the start of that hour).

        Executions count by their own time, routed quantity by its child's creation and
        orders by their creation (docs/api.md, "Execution analytics").
        """
        with self._db.connection() as conn:
            clock = conn.execute(WATERMARK).fetchone()
            assert clock is not None
            window = analytics_window(clock["now"], days, clock["rolled_through"])
            rows = conn.execute(
                WINDOW_FACTS,
                {
                    "user_id": user_id,
                    "grains": [grain for grain, _, _ in window.ranges],
                    "froms": [low for _, low, _ in window.ranges],
                    "tos": [high for _, _, high in window.ranges],
                    "live_from": window.live_from,
                },
            ).fetchall()
        return merge_facts(user_id, days, [_facts(r) for r in rows])
