"""Execution analytics of one trader, aggregated in Postgres."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.adapters.postgres.pool import Database
from shared.domain.analytics import (
    BrokerBreakdown,
    ExecutionAnalytics,
    ExecutionStats,
    StrategyBreakdown,
)

# Orders of the caller created in the window; every other figure hangs off these, so an
# execution is counted with the order it belongs to and the window never splits an order.
_SCOPED = """
WITH scoped AS (
    SELECT o.order_id, o.quantity, COALESCE(d.routing_strategy, o.routing_objective) AS strategy
    FROM orders o LEFT JOIN order_routing_decisions d ON d.order_id = o.order_id
    WHERE o.user_id = %(user_id)s AND o.created_at >= now() - make_interval(days => %(days)s)
)
"""

EXECUTION_STATS = (
    _SCOPED
    + """
SELECT GROUPING(m.broker_id) AS by_broker, GROUPING(s.strategy) AS by_strategy,
    m.broker_id, s.strategy,
    count(*) AS child_executions,
    avg(m.execution_latency_ms) AS avg_latency_ms,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY m.execution_latency_ms) AS p50_latency_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY m.execution_latency_ms) AS p95_latency_ms,
    avg(m.slippage_bps) AS avg_slippage_bps,
    avg(m.price_improvement_bps) AS avg_price_improvement_bps,
    COALESCE(sum(m.charges_inr), 0) AS total_charges_inr
FROM execution_metrics m JOIN scoped s ON s.order_id = m.order_id
GROUP BY GROUPING SETS ((), (m.broker_id), (s.strategy))
"""
)

QUANTITY_STATS = (
    _SCOPED
    + """
SELECT 'broker' AS level, c.broker_id AS key, count(DISTINCT c.order_id) AS orders,
    COALESCE(sum(c.filled_quantity), 0) AS filled, COALESCE(sum(c.quantity), 0) AS ordered
FROM child_orders c JOIN scoped s ON s.order_id = c.order_id
GROUP BY c.broker_id
UNION ALL
SELECT 'strategy', s.strategy, count(*), COALESCE(sum(f.filled), 0), COALESCE(sum(s.quantity), 0)
FROM scoped s LEFT JOIN (
    SELECT order_id, sum(filled_quantity) AS filled FROM child_orders GROUP BY order_id
) f ON f.order_id = s.order_id
GROUP BY GROUPING SETS ((), (s.strategy))
"""
)


def _rounded(value: Any, places: int) -> float | None:
    # SQL's avg/percentile over no measured value is NULL: unknown, not zero.
    return None if value is None else round(float(value), places)


def _stats(row: dict[str, Any] | None, quantities: dict[str, Any] | None) -> dict[str, Any]:
    filled = int(quantities["filled"]) if quantities else 0
    ordered = int(quantities["ordered"]) if quantities else 0
    values: dict[str, Any] = {
        "orders": int(quantities["orders"]) if quantities else 0,
        "filled_quantity": filled,
        "ordered_quantity": ordered,
        "fill_rate_percentage": round(100.0 * filled / ordered, 2) if ordered else None,
    }
    if row is not None:
        values.update(
            child_executions=int(row["child_executions"]),
            avg_latency_ms=_rounded(row["avg_latency_ms"], 2),
            p50_latency_ms=_rounded(row["p50_latency_ms"], 2),
            p95_latency_ms=_rounded(row["p95_latency_ms"], 2),
            avg_slippage_bps=_rounded(row["avg_slippage_bps"], 4),
            avg_price_improvement_bps=_rounded(row["avg_price_improvement_bps"], 4),
            total_charges_inr=Decimal(row["total_charges_inr"]).quantize(Decimal("0.01")),
        )
    return values


class PostgresAnalyticsRepository:
    """:class:`shared.ports.AnalyticsRepository`: summary and per-broker/strategy breakdowns."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def execution_analytics(self, user_id: str, days: int) -> ExecutionAnalytics:
        """Stats of ``user_id``'s orders created in the last ``days`` days."""
        params = {"user_id": user_id, "days": days}
        with self._db.connection() as conn:
            executions = conn.execute(EXECUTION_STATS, params).fetchall()
            quantities = conn.execute(QUANTITY_STATS, params).fetchall()
        summary_row = next((r for r in executions if r["by_broker"] and r["by_strategy"]), None)
        broker_rows = {r["broker_id"]: r for r in executions if not r["by_broker"]}
        strategy_rows = {r["strategy"]: r for r in executions if not r["by_strategy"]}
        broker_qty = {q["key"]: q for q in quantities if q["level"] == "broker"}
        strategy_qty = {
            q["key"]: q for q in quantities if q["level"] == "strategy" and q["key"] is not None
        }
        summary_qty = next(
            (q for q in quantities if q["level"] == "strategy" and q["key"] is None), None
        )
        return ExecutionAnalytics(
            user_id=user_id,
            days=days,
            summary=ExecutionStats(**_stats(summary_row, summary_qty)),
            by_broker=tuple(
                BrokerBreakdown(broker_id=b, **_stats(broker_rows.get(b), broker_qty.get(b)))
                for b in sorted(set(broker_rows) | set(broker_qty))
            ),
            by_strategy=tuple(
                StrategyBreakdown(strategy=s, **_stats(strategy_rows.get(s), strategy_qty.get(s)))
                for s in sorted(set(strategy_rows) | set(strategy_qty))
            ),
        )
