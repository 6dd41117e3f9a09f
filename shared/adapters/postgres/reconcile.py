"""Orders whose answer was never written, finished one at a time under a row lock."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from shared.adapters.postgres.orders import (
    CHILD_COLUMNS,
    INSERT_OUTBOX,
    UPDATE_ALLOCATION_STATUS,
    UPDATE_ORDER_RESPONSE,
    UPSERT_CHILD,
    _child_params,
    _event_params,
    child_from_row,
)
from shared.adapters.postgres.pool import Database
from shared.domain.models import (
    BrokerScore,
    ChargeBreakdown,
    ExpectedExecution,
    OrderAllocation,
    RoutingDecision,
)
from shared.ports import Settlement, StuckOrder

# SKIP LOCKED: two reconcilers at once each take a different order, and an order being settled
# is invisible to the other until its answer is committed (then it no longer matches).
SELECT_NEXT_STUCK = """
SELECT o.order_id, o.user_id, o.client_order_id, o.quantity, o.created_at,
    d.id AS decision_id, d.decision, d.routing_strategy, d.confidence_score,
    d.expected_execution_time_ms, d.expected_slippage_bps, d.expected_price,
    d.expected_fill_probability, d.expected_total_cost_inr, d.fallback_broker_ids,
    d.broker_scores
FROM orders o JOIN order_routing_decisions d ON d.order_id = o.order_id
WHERE o.response IS NULL AND o.created_at < now() - make_interval(secs => %(older_than_s)s)
ORDER BY o.created_at
LIMIT 1
FOR UPDATE OF o SKIP LOCKED
"""
SELECT_CHILDREN_FOR_UPDATE = f"""
SELECT {CHILD_COLUMNS} FROM child_orders c JOIN orders o USING (order_id)
WHERE c.order_id = %s ORDER BY c.attempt, c.child_order_id
FOR UPDATE OF c
"""
SELECT_ALLOCATIONS = """
SELECT broker_id, quantity, allocation_percentage, expected_execution_price, priority, slices,
    expected_cost_inr
FROM order_allocations WHERE routing_decision_id = %s AND cascaded_from IS NULL
ORDER BY priority, id
"""


class PostgresStuckOrders:
    """:class:`shared.ports.StuckOrders` over ``orders``, its decision and its children."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def settle_next(
        self, *, older_than_s: float, settle: Callable[[StuckOrder], Settlement]
    ) -> Settlement | None:
        """Lock, settle and store the oldest unanswered order; ``None`` when there is none.

        Everything ``settle`` decides (children, allocation statuses, outbox events, the
        order's answer and status) is written in the transaction that holds the order's lock,
        so a crash of the reconciler itself leaves the order as it was, for the next run.
        """
        with self._db.connection() as conn:
            row = conn.execute(SELECT_NEXT_STUCK, {"older_than_s": older_than_s}).fetchone()
            if row is None:
                return None
            children = conn.execute(SELECT_CHILDREN_FOR_UPDATE, (row["order_id"],)).fetchall()
            if row["decision"] is not None:
                decision = RoutingDecision.model_validate(row["decision"])
            else:
                allocations = conn.execute(SELECT_ALLOCATIONS, (row["decision_id"],)).fetchall()
                decision = _decision_from_columns(row, allocations)
            stuck = StuckOrder(
                order_id=row["order_id"],
                user_id=row["user_id"],
                client_order_id=row["client_order_id"],
                quantity=int(row["quantity"]),
                decision_id=int(row["decision_id"]),
                decision=decision,
                children=tuple(child_from_row(c) for c in children),
                created_at=row["created_at"],
            )
            settlement = settle(stuck)
            with conn.pipeline(), conn.cursor() as cur:
                if settlement.children:
                    cur.executemany(UPSERT_CHILD, [_child_params(c) for c in settlement.children])
                    cur.executemany(
                        UPDATE_ALLOCATION_STATUS,
                        [
                            {
                                "order_id": stuck.order_id,
                                "broker_id": c.broker_id,
                                "status": c.status.value,
                            }
                            for c in settlement.children
                        ],
                    )
                if settlement.events:
                    cur.executemany(INSERT_OUTBOX, [_event_params(e) for e in settlement.events])
                cur.execute(
                    UPDATE_ORDER_RESPONSE,
                    {
                        "order_id": stuck.order_id,
                        "response": Jsonb(settlement.response),
                        "status": settlement.status,
                    },
                )
        return settlement


def _decision_from_columns(
    row: dict[str, Any], allocations: list[dict[str, Any]]
) -> RoutingDecision:
    # Orders stored before V005 have no decision document: the columns hold all of it but the
    # itemised charges, of which only the total cost was kept.
    return RoutingDecision(
        order_id=row["order_id"],
        strategy=row["routing_strategy"],
        allocations=tuple(
            OrderAllocation(
                broker_id=a["broker_id"],
                quantity=int(a["quantity"]),
                allocation_percentage=a["allocation_percentage"],
                expected_execution_price=a["expected_execution_price"],
                priority=a["priority"],
                slices=a["slices"],
                expected_cost_inr=a["expected_cost_inr"] or Decimal(0),
            )
            for a in allocations
        ),
        fallback_broker_ids=tuple(row["fallback_broker_ids"] or ()),
        confidence_score=float(row["confidence_score"]),
        expected_execution=ExpectedExecution(
            price=row["expected_price"] or Decimal(0),
            slippage_bps=float(row["expected_slippage_bps"] or 0),
            time_ms=float(row["expected_execution_time_ms"] or 0),
            fill_probability=float(row["expected_fill_probability"] or 0),
            charges=ChargeBreakdown(),
            total_cost_inr=row["expected_total_cost_inr"] or Decimal(0),
        ),
        broker_scores=tuple(BrokerScore.model_validate(s) for s in row["broker_scores"] or ()),
    )
