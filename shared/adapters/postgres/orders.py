"""Orders, routing decisions, allocations, child orders and outbox rows in Postgres."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import learned_profiles, send_learning
from shared.domain.contracts import DomainEvent
from shared.domain.history import HistoryQuery
from shared.domain.models import BrokerProfile, OrderAllocation, OrderRequest, RoutingDecision
from shared.domain.order_view import OrderView
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.ports import Observed, ProfileKey, StoredOrder

# The order and its decision in one statement: the decision is inserted only when the order
# row is new, so a concurrent duplicate (blocked on the unique key until the first commits)
# gets no row back and writes nothing.
INSERT_ORDER_AND_DECISION = """
WITH new_order AS (
    INSERT INTO orders (order_id, user_id, client_order_id, request_hash, symbol, exchange, side,
        quantity, order_type, limit_price, trigger_price, product, routing_objective, max_brokers)
    VALUES (%(order_id)s, %(user_id)s, %(client_order_id)s, %(request_hash)s, %(symbol)s,
        %(exchange)s, %(side)s, %(quantity)s, %(order_type)s, %(limit_price)s, %(trigger_price)s,
        %(product)s, %(routing_objective)s, %(max_brokers)s)
    ON CONFLICT (user_id, client_order_id) DO NOTHING
    RETURNING order_id, user_id
)
INSERT INTO order_routing_decisions (order_id, user_id, routing_strategy, confidence_score,
    expected_execution_time_ms, expected_slippage_bps, expected_price, expected_fill_probability,
    expected_charges_inr, expected_total_cost_inr, fallback_broker_ids, broker_scores, decision)
SELECT order_id, user_id, %(strategy)s, %(confidence)s, %(time_ms)s, %(slippage)s, %(price)s,
    %(fill_probability)s, %(charges)s, %(total_cost)s, %(fallbacks)s, %(scores)s, %(decision)s
FROM new_order
RETURNING id
"""

INSERT_ALLOCATION = """
INSERT INTO order_allocations (routing_decision_id, broker_id, allocation_percentage,
    expected_execution_price, priority, status, quantity, slices, expected_cost_inr,
    cascaded_from)
VALUES (%(decision_id)s, %(broker_id)s, %(pct)s, %(price)s, %(priority)s, %(status)s,
    %(quantity)s, %(slices)s, %(cost)s, %(cascaded_from)s)
RETURNING id, broker_id
"""

# A cascaded allocation finds its decision and derives its percentage in SQL, so recording
# placements needs no read first and stays one pipelined round trip.
INSERT_CASCADED_ALLOCATION = """
INSERT INTO order_allocations (routing_decision_id, broker_id, allocation_percentage,
    expected_execution_price, priority, status, quantity, slices, cascaded_from)
SELECT d.id, %(broker_id)s, round(100.0 * %(quantity)s / o.quantity, 2), %(price)s,
    %(priority)s, 'PENDING', %(quantity)s, 1, %(cascaded_from)s
FROM order_routing_decisions d JOIN orders o USING (order_id)
WHERE d.order_id = %(order_id)s
"""

UPSERT_CHILD = """
INSERT INTO child_orders (child_order_id, order_id, allocation_id, user_id, broker_id,
    broker_order_id, symbol, side, quantity, order_type, limit_price, expected_price,
    arrival_bid, arrival_ask, status, attempt, status_reason, placed_at)
VALUES (%(child_order_id)s, %(order_id)s::varchar,
    (SELECT a.id FROM order_allocations a JOIN order_routing_decisions d
        ON d.id = a.routing_decision_id
     WHERE d.order_id = %(order_id)s::varchar AND a.broker_id = %(broker_id)s::varchar
     ORDER BY a.id DESC LIMIT 1),
    %(user_id)s::varchar, %(broker_id)s::varchar, %(broker_order_id)s, %(symbol)s, %(side)s,
    %(quantity)s, %(order_type)s, %(limit_price)s, %(expected_price)s, %(arrival_bid)s,
    %(arrival_ask)s,
    %(status)s::varchar, %(attempt)s, %(status_reason)s, %(placed_at)s)
ON CONFLICT (child_order_id) DO UPDATE SET
    broker_order_id = COALESCE(child_orders.broker_order_id, EXCLUDED.broker_order_id),
    status = CASE WHEN child_orders.status IN ('PENDING', 'PLACED') THEN EXCLUDED.status
                  ELSE child_orders.status END,
    status_reason = COALESCE(EXCLUDED.status_reason, child_orders.status_reason),
    placed_at = COALESCE(child_orders.placed_at, EXCLUDED.placed_at),
    updated_at = now()
"""

UPDATE_ALLOCATION_STATUS = """
UPDATE order_allocations a SET status = %(status)s
FROM order_routing_decisions d
WHERE d.id = a.routing_decision_id AND d.order_id = %(order_id)s AND a.broker_id = %(broker_id)s
"""

INSERT_OUTBOX = """
INSERT INTO event_outbox (event_id, source, detail_type, detail)
VALUES (%(event_id)s, %(source)s, %(detail_type)s, %(detail)s)
ON CONFLICT (event_id) DO NOTHING
"""

SELECT_BY_CLIENT_ORDER = """
SELECT order_id, user_id, client_order_id, request_hash, response
FROM orders WHERE user_id = %s AND client_order_id = %s
"""

UPDATE_ORDER_RESPONSE = """
UPDATE orders SET response = %(response)s, status = %(status)s, updated_at = now()
WHERE order_id = %(order_id)s
"""

CHILD_COLUMNS = """c.child_order_id, c.order_id, c.user_id, c.broker_id, c.broker_order_id,
    c.symbol, o.exchange, c.side, c.quantity, c.order_type, o.product, c.limit_price,
    o.trigger_price, c.expected_price, c.arrival_bid, c.arrival_ask, c.status, c.attempt,
    c.status_reason, c.filled_quantity, c.average_price, c.placed_at"""
SELECT_CHILD = (
    f"SELECT {CHILD_COLUMNS} FROM child_orders c JOIN orders o USING (order_id) "
    "WHERE c.child_order_id = %s"
)
SELECT_CHILD_BY_BROKER_ORDER = (
    f"SELECT {CHILD_COLUMNS} FROM child_orders c JOIN orders o USING (order_id) "
    "WHERE c.broker_id = %s AND c.broker_order_id = %s"
)

SELECT_ORDER_VIEW = """
SELECT o.order_id, o.user_id, o.client_order_id, o.symbol, o.exchange, o.side, o.quantity,
    o.order_type, o.limit_price, o.trigger_price, o.product, o.routing_objective, o.status,
    o.created_at, d.id AS decision_id, d.routing_strategy, d.confidence_score,
    d.expected_execution_time_ms, d.expected_slippage_bps, d.expected_price,
    d.expected_fill_probability, d.expected_charges_inr, d.fallback_broker_ids
FROM orders o LEFT JOIN order_routing_decisions d ON d.order_id = o.order_id
WHERE o.order_id = %s AND o.user_id = %s
"""
SELECT_ALLOCATIONS = """
SELECT broker_id, quantity, allocation_percentage, expected_execution_price, priority, status,
    slices, cascaded_from
FROM order_allocations WHERE routing_decision_id = %s ORDER BY priority, id
"""
SELECT_CHILDREN = """
SELECT child_order_id, broker_id, broker_order_id, quantity, status, filled_quantity,
    average_price, attempt, status_reason, placed_at
FROM child_orders WHERE order_id = %s ORDER BY attempt, child_order_id
"""
SELECT_EXECUTIONS = """
SELECT child_order_id, broker_id, status, filled_quantity, fill_price, execution_latency_ms,
    slippage_bps, price_improvement_bps, fill_rate, execution_quality_score, charges_inr,
    created_at
FROM execution_metrics WHERE order_id = %s ORDER BY id
"""

_ORDER_VIEW_FROM = SELECT_ORDER_VIEW.split("WHERE", maxsplit=1)[0]
SELECT_HISTORY = (
    _ORDER_VIEW_FROM
    + """WHERE o.user_id = %(user_id)s
  AND (%(status)s::text IS NULL OR o.status = %(status)s)
  AND (%(symbol)s::text IS NULL OR o.symbol = %(symbol)s)
  AND (%(since)s::timestamptz IS NULL OR o.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR o.created_at < %(until)s)
  AND (%(after_at)s::timestamptz IS NULL
       OR (o.created_at, o.order_id) < (%(after_at)s::timestamptz, %(after_id)s::text))
ORDER BY o.created_at DESC, o.order_id DESC
LIMIT %(limit)s
"""
)
SELECT_OPEN = (
    _ORDER_VIEW_FROM
    + """WHERE o.user_id = %(user_id)s
  AND EXISTS (SELECT 1 FROM child_orders c WHERE c.order_id = o.order_id
              AND c.status IN ('PENDING', 'PLACED', 'PARTIALLY_FILLED'))
ORDER BY o.created_at DESC, o.order_id DESC
LIMIT %(limit)s
"""
)
SELECT_STATUSES = "SELECT order_id, status FROM orders WHERE order_id = ANY(%s)"
# The primary key (order_id, order_status) makes the claim: of two callers, one inserts the row,
# the other's insert does nothing and returns nothing (V015).
CLAIM_FINAL_STATUSES = """
INSERT INTO order_update_claims (order_id, order_status)
SELECT order_id, status FROM orders WHERE order_id = ANY(%s) AND status = ANY(%s)
ON CONFLICT (order_id, order_status) DO NOTHING
RETURNING order_id, order_status
"""
SELECT_ALLOCATIONS_OF = """
SELECT routing_decision_id, broker_id, quantity, allocation_percentage, expected_execution_price,
    priority, status, slices, cascaded_from
FROM order_allocations WHERE routing_decision_id = ANY(%s) ORDER BY priority, id
"""
SELECT_CHILDREN_OF = """
SELECT order_id, child_order_id, broker_id, broker_order_id, quantity, status, filled_quantity,
    average_price, attempt, status_reason, placed_at
FROM child_orders WHERE order_id = ANY(%s) ORDER BY attempt, child_order_id
"""
SELECT_EXECUTIONS_OF = """
SELECT order_id, child_order_id, broker_id, status, filled_quantity, fill_price,
    execution_latency_ms, slippage_bps, price_improvement_bps, fill_rate, execution_quality_score,
    charges_inr, created_at
FROM execution_metrics WHERE order_id = ANY(%s) ORDER BY id
"""


def _group(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def order_views(
    conn: psycopg.Connection[dict[str, Any]], orders: list[dict[str, Any]]
) -> list[OrderView]:
    """The views of ``orders`` (rows of the order view's select), in four queries in all."""
    if not orders:
        return []
    ids = [o["order_id"] for o in orders]
    decisions = [o["decision_id"] for o in orders if o["decision_id"] is not None]
    allocations = _group(
        conn.execute(SELECT_ALLOCATIONS_OF, (decisions,)).fetchall(), "routing_decision_id"
    )
    children = _group(conn.execute(SELECT_CHILDREN_OF, (ids,)).fetchall(), "order_id")
    executions = _group(conn.execute(SELECT_EXECUTIONS_OF, (ids,)).fetchall(), "order_id")
    return [
        OrderView.model_validate(
            {
                "order": o,
                "allocations": allocations.get(o["decision_id"], []),
                "childOrders": children.get(o["order_id"], []),
                "executions": executions.get(o["order_id"], []),
            }
        )
        for o in orders
    ]


def _child_params(child: ChildOrder) -> dict[str, Any]:
    return {
        "child_order_id": child.child_order_id,
        "order_id": child.order_id,
        "user_id": child.user_id,
        "broker_id": child.broker_id,
        "broker_order_id": child.broker_order_id,
        "symbol": child.symbol,
        "side": child.side.value,
        "quantity": child.quantity,
        "order_type": child.order_type.value,
        "limit_price": child.limit_price,
        "expected_price": child.expected_price,
        "arrival_bid": child.arrival_bid,
        "arrival_ask": child.arrival_ask,
        "status": child.status.value,
        "attempt": child.attempt,
        "status_reason": child.status_reason,
        "placed_at": child.placed_at,
    }


def _event_params(event: DomainEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "source": event.source,
        "detail_type": event.detail_type,
        "detail": Jsonb(event.detail),
    }


def child_from_row(row: dict[str, Any]) -> ChildOrder:
    """Map a child order row (joined with its parent) to the domain model."""
    return ChildOrder(
        child_order_id=row["child_order_id"],
        order_id=row["order_id"],
        user_id=row["user_id"],
        broker_id=row["broker_id"],
        broker_order_id=row["broker_order_id"],
        symbol=row["symbol"],
        exchange=row["exchange"],
        side=row["side"],
        quantity=row["quantity"],
        order_type=row["order_type"],
        product=row["product"],
        limit_price=row["limit_price"],
        trigger_price=row["trigger_price"],
        expected_price=row["expected_price"],
        arrival_bid=row["arrival_bid"],
        arrival_ask=row["arrival_ask"],
        status=ChildOrderStatus(row["status"]),
        attempt=row["attempt"],
        status_reason=row["status_reason"],
        filled_quantity=row["filled_quantity"],
        average_price=row["average_price"],
        placed_at=row["placed_at"],
    )


class PostgresOrderRepository:
    """:class:`shared.ports.OrderRepository`: the routing audit trail and child order state."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def find_by_client_order_id(self, user_id: str, client_order_id: str) -> StoredOrder | None:
        """The stored order of an idempotency key, or ``None``."""
        with self._db.connection() as conn:
            row = conn.execute(SELECT_BY_CLIENT_ORDER, (user_id, client_order_id)).fetchone()
        if row is None:
            return None
        return StoredOrder(
            order_id=row["order_id"],
            user_id=row["user_id"],
            client_order_id=row["client_order_id"],
            request_hash=row["request_hash"],
            response=row["response"],
        )

    def save_routed_order(
        self,
        order: OrderRequest,
        *,
        request_hash: str,
        decision: RoutingDecision,
        children: Sequence[ChildOrder],
        events: Sequence[DomainEvent],
    ) -> int | None:
        """Store the order and everything decided about it in one transaction.

        Returns
        -------
        int | None
            The decision id, or ``None`` when ``(user_id, client_order_id)`` already exists: the
            unique constraint makes concurrent duplicates wait for the first writer and then
            write nothing.
        """
        with self._db.connection() as conn:
            decision_row = conn.execute(
                INSERT_ORDER_AND_DECISION, _order_and_decision_params(order, request_hash, decision)
            ).fetchone()
            if decision_row is None:
                return None
            decision_id = int(decision_row["id"])
            # One pipeline for the rest: allocations, children and events cost one round trip.
            with conn.pipeline(), conn.cursor() as cur:
                cur.executemany(
                    INSERT_ALLOCATION,
                    [_planned_allocation_params(decision_id, a) for a in decision.allocations],
                )
                cur.executemany(UPSERT_CHILD, [_child_params(c) for c in children])
                if events:
                    cur.executemany(INSERT_OUTBOX, [_event_params(e) for e in events])
        return decision_id

    def record_placements(
        self,
        order_id: str,
        children: Sequence[ChildOrder],
        events: Sequence[DomainEvent],
        response: dict[str, Any],
        *,
        observed: Sequence[Observed] = (),
        alpha: float | None = None,
    ) -> dict[ProfileKey, BrokerProfile]:
        """Store what the brokers answered, cascaded children, events and the final response.

        ``observed`` is learned first in the same pipeline (:func:`send_learning`, the
        tracker's statement), while the children it names are still unplaced: a second call
        for the same placements learns nothing again.

        Returns
        -------
        dict[ProfileKey, BrokerProfile]
            The profiles the observations changed, as committed.
        """
        if observed and alpha is None:
            raise ValueError("alpha is required to learn from placements")
        cascaded = [c for c in children if c.cascaded_from is not None]
        learned = None
        with self._db.connection() as conn:
            with conn.pipeline(), conn.cursor() as cur:
                # Every write in one pipeline: one round trip however many children there are.
                if observed:
                    assert alpha is not None
                    learned = send_learning(conn, observed, alpha=alpha)
                if cascaded:
                    cur.executemany(
                        INSERT_CASCADED_ALLOCATION,
                        [
                            {
                                "order_id": order_id,
                                "broker_id": c.broker_id,
                                "quantity": c.quantity,
                                "price": c.expected_price,
                                "priority": c.priority,
                                "cascaded_from": c.cascaded_from,
                            }
                            for c in cascaded
                        ],
                    )
                cur.executemany(UPSERT_CHILD, [_child_params(c) for c in children])
                cur.executemany(
                    UPDATE_ALLOCATION_STATUS,
                    [
                        {"order_id": order_id, "broker_id": c.broker_id, "status": c.status.value}
                        for c in children
                    ],
                )
                if events:
                    cur.executemany(INSERT_OUTBOX, [_event_params(e) for e in events])
                cur.execute(
                    UPDATE_ORDER_RESPONSE,
                    {
                        "order_id": order_id,
                        "response": Jsonb(response),
                        "status": str(response.get("status", "ROUTED")),
                    },
                )
            # Read after the pipeline's sync, as the tracker does.
            return learned_profiles(learned) if learned is not None else {}

    def get_order_view(self, user_id: str, order_id: str) -> OrderView | None:
        """A caller's own order with its decision, allocations, children and executions."""
        with self._db.connection() as conn:
            order = conn.execute(SELECT_ORDER_VIEW, (order_id, user_id)).fetchone()
            if order is None:
                return None
            allocations = (
                conn.execute(SELECT_ALLOCATIONS, (order["decision_id"],)).fetchall()
                if order["decision_id"] is not None
                else []
            )
            children = conn.execute(SELECT_CHILDREN, (order_id,)).fetchall()
            executions = conn.execute(SELECT_EXECUTIONS, (order_id,)).fetchall()
        # Rows as the driver reads them (Decimal, datetime), typed by the view model.
        return OrderView.model_validate(
            {
                "order": order,
                "allocations": allocations,
                "childOrders": children,
                "executions": executions,
            }
        )

    def list_orders(self, user_id: str, query: HistoryQuery) -> list[OrderView]:
        """Up to ``query.limit + 1`` of the caller's orders after the cursor's key, newest first."""
        after = query.after
        params = {
            "user_id": user_id,
            "status": query.status,
            "symbol": query.symbol,
            "since": query.since,
            "until": query.until,
            "after_at": after.created_at if after else None,
            "after_id": after.order_id if after else None,
            "limit": query.limit + 1,
        }
        with self._db.connection() as conn:
            return order_views(conn, conn.execute(SELECT_HISTORY, params).fetchall())

    def order_statuses(self, order_ids: Collection[str]) -> dict[str, str]:
        """The status of each of ``order_ids`` that exists."""
        if not order_ids:
            return {}
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_STATUSES, (sorted(order_ids),)).fetchall()
        return {r["order_id"]: r["status"] for r in rows}

    def claim_final_statuses(
        self, order_ids: Collection[str], finals: Collection[str]
    ) -> dict[str, str]:
        """Claim the final statuses of ``order_ids`` not announced yet (one statement)."""
        if not order_ids:
            return {}
        with self._db.connection() as conn:
            rows = conn.execute(
                CLAIM_FINAL_STATUSES, (sorted(order_ids), sorted(finals))
            ).fetchall()
        return {r["order_id"]: r["order_status"] for r in rows}

    def open_orders(self, user_id: str, *, limit: int) -> list[OrderView]:
        """The caller's orders with a child still working, newest first."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_OPEN, {"user_id": user_id, "limit": limit}).fetchall()
            return order_views(conn, rows)

    def get_child(self, child_order_id: str) -> ChildOrder | None:
        """One child order or ``None``."""
        with self._db.connection() as conn:
            row = conn.execute(SELECT_CHILD, (child_order_id,)).fetchone()
        return child_from_row(row) if row else None

    def find_child_by_broker_order(self, broker_id: str, broker_order_id: str) -> ChildOrder | None:
        """The child order a broker knows by its own order id, or ``None``."""
        with self._db.connection() as conn:
            row = conn.execute(
                SELECT_CHILD_BY_BROKER_ORDER, (broker_id, broker_order_id)
            ).fetchone()
        return child_from_row(row) if row else None


def _order_and_decision_params(
    order: OrderRequest, request_hash: str, decision: RoutingDecision
) -> dict[str, Any]:
    expected = decision.expected_execution
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "client_order_id": order.client_order_id or order.order_id,
        "request_hash": request_hash,
        "symbol": order.symbol,
        "exchange": order.exchange.value,
        "side": order.side.value,
        "quantity": order.quantity,
        "order_type": order.order_type.value,
        "limit_price": order.limit_price,
        "trigger_price": order.trigger_price,
        "product": order.product.value,
        "routing_objective": order.routing_objective.value,
        "max_brokers": order.max_brokers,
        "strategy": decision.strategy.value,
        "confidence": round(decision.confidence_score, 3),
        "time_ms": round(expected.time_ms),
        "slippage": round(expected.slippage_bps, 4),
        "price": expected.price,
        "fill_probability": round(expected.fill_probability, 4),
        "charges": expected.charges.total,
        "total_cost": expected.total_cost_inr,
        "fallbacks": list(decision.fallback_broker_ids),
        "scores": Jsonb([s.model_dump(mode="json", by_alias=True) for s in decision.broker_scores]),
        # The whole decision, for the reconciler's answer if placement never happens.
        "decision": Jsonb(decision.model_dump(mode="json")),
    }


def _planned_allocation_params(decision_id: int, allocation: OrderAllocation) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "broker_id": allocation.broker_id,
        "pct": allocation.allocation_percentage,
        "price": allocation.expected_execution_price,
        "priority": allocation.priority,
        "status": "PENDING",
        "quantity": allocation.quantity,
        "slices": allocation.slices,
        "cost": allocation.expected_cost_inr,
        "cascaded_from": None,
    }
