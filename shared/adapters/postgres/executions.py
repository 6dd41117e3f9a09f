"""Execution reports in Postgres: stored once; child state and profile change in the same commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shared.adapters.postgres.orders import SELECT_CHILD, child_from_row
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import (
    APPLY_OBSERVATION,
    observation_params,
    profile_from_row,
)
from shared.domain.orders import ChildOrder
from shared.ports import ExecutionPlan, ExecutionRecord, TrackedExecution

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

LOCK_CHILD = SELECT_CHILD + " FOR UPDATE OF c"
LOCK_CHILD_BY_BROKER_ORDER = (
    "SELECT child_order_id FROM child_orders WHERE broker_id = %s AND broker_order_id = %s"
)

UPDATE_CHILD_STATE = """
UPDATE child_orders SET status = %(status)s, filled_quantity = %(filled)s,
    average_price = %(average)s, broker_order_id = COALESCE(broker_order_id, %(broker_order_id)s),
    updated_at = now()
WHERE child_order_id = %(child_order_id)s
"""

UPDATE_ORDER_STATUS = """
UPDATE orders SET status = CASE
        WHEN NOT EXISTS (SELECT 1 FROM child_orders c WHERE c.order_id = %(order_id)s
                         AND c.status IN ('PENDING', 'PLACED', 'PARTIALLY_FILLED')) THEN 'COMPLETED'
        ELSE status END,
    updated_at = now()
WHERE order_id = %(order_id)s
"""


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


class PostgresExecutionRepository:
    """:class:`shared.ports.ExecutionRepository` over ``execution_metrics`` and ``child_orders``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, record: ExecutionRecord) -> bool:
        """Insert one metrics row; ``False`` when its report key is already stored."""
        with self._db.connection() as conn:
            return conn.execute(INSERT_ONCE, record_params(record)).fetchone() is not None

    def find_child_id(self, broker_id: str, broker_order_id: str) -> str | None:
        """Our child order id of a broker's order id, or ``None``."""
        with self._db.connection() as conn:
            row = conn.execute(LOCK_CHILD_BY_BROKER_ORDER, (broker_id, broker_order_id)).fetchone()
        return None if row is None else str(row["child_order_id"])

    def track(
        self,
        child_order_id: str,
        plan: Callable[[ChildOrder], ExecutionPlan | None],
        *,
        alpha: float,
        observed_at: datetime,
    ) -> TrackedExecution:
        """Fold one report into its child order in ONE transaction, with the child row locked.

        ``plan`` sees the child as committed by every earlier report (the row lock serialises
        reports of the same child, so cumulative-to-delta arithmetic never double counts) and
        returns what to store, or ``None`` to store nothing. The metrics row is inserted once by
        its report key: a duplicate rolls nothing forward. The child's state and the broker
        profile's moving averages change in the same commit, so a crash can never leave a
        report stored but not learned from.
        """
        with self._db.connection() as conn:
            row = conn.execute(LOCK_CHILD, (child_order_id,)).fetchone()
            if row is None:
                return TrackedExecution(status="unknown_child")
            child = child_from_row(row)
            decided = plan(child)
            if decided is None:
                return TrackedExecution(status="ignored", child=child)
            inserted = conn.execute(INSERT_ONCE, record_params(decided.record)).fetchone()
            if inserted is None:
                return TrackedExecution(status="duplicate", child=child)
            state = decided.child_state
            learned = None
            # The writes that follow the insert go out in one pipelined round trip. The child's
            # broker exists (a foreign key of child_orders), so learning cannot fail on it.
            with conn.pipeline():
                if state is not None:
                    conn.execute(
                        UPDATE_CHILD_STATE,
                        {
                            "child_order_id": state.child_order_id,
                            "status": state.status.value,
                            "filled": state.filled_quantity,
                            "average": state.average_price,
                            "broker_order_id": state.broker_order_id,
                        },
                    )
                    conn.execute(UPDATE_ORDER_STATUS, {"order_id": child.order_id})
                if decided.observation is not None:
                    learned = conn.execute(
                        APPLY_OBSERVATION,
                        observation_params(
                            child.broker_id,
                            child.symbol,
                            decided.observation,
                            alpha=alpha,
                            observed_at=observed_at,
                        ),
                    )
            row = learned.fetchone() if learned is not None else None
            profile = profile_from_row(row) if row else None
        return TrackedExecution(status="recorded", child=child, profile=profile)
