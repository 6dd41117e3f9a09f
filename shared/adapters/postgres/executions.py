"""Execution metrics in Postgres, stored once per report key."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from shared.adapters.postgres.pool import Database
from shared.ports import ExecutionRecord

INSERT_ONCE = """
INSERT INTO execution_metrics (order_id, broker_id, symbol, execution_latency_ms, slippage_bps,
    price_improvement_bps, fill_rate, execution_quality_score, market_conditions, user_id,
    child_order_id, report_key, status, filled_quantity, fill_price, charges_inr)
VALUES (%(order_id)s, %(broker_id)s, %(symbol)s, %(latency)s, %(slippage)s, %(pi)s, %(fill_rate)s,
    %(quality)s, %(market)s, %(user_id)s, %(child_order_id)s, %(report_key)s, %(status)s,
    %(filled)s, %(fill_price)s, %(charges)s)
ON CONFLICT (report_key) DO NOTHING
RETURNING id
"""


def _bounded(value: float | None, limit: float, places: int) -> float | None:
    # DECIMAL(8,4) holds |x| < 10,000: clamp rather than fail on an absurd but valid report.
    if value is None:
        return None
    return round(max(-limit, min(limit, value)), places)


class PostgresExecutionRepository:
    """:class:`shared.ports.ExecutionRepository` over ``execution_metrics``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, record: ExecutionRecord) -> bool:
        """Insert the metrics row once; ``False`` when the report key is already stored."""
        params = {
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
        with self._db.connection() as conn:
            return conn.execute(INSERT_ONCE, params).fetchone() is not None
