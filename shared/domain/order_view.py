"""The audit trail of one order as a trader reads it (``GET /orders/{orderId}``).

Built from the store's rows; money and prices stay ``Decimal`` (decimal strings on the wire) and
timestamps carry their zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, ConfigDict, Field

from shared.domain.models import (
    Exchange,
    FrozenModel,
    OrderType,
    Product,
    RoutingObjective,
    Side,
)


def _utc(value: Any) -> Any:
    # The specification's tables use TIMESTAMP (no zone) written in UTC; say so on the wire.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_utc)]
"""A timestamp with its zone (UTC), ISO 8601 on the wire."""


class _View(FrozenModel):
    # Built from database rows, which carry columns the view does not show. Prices and amounts
    # are Decimal: JSON decimal strings, as in every other response, never floats.
    model_config = ConfigDict(extra="ignore")


class OrderSummary(_View):
    """The order as stored, with its routing decision's expectations."""

    order_id: str
    client_order_id: str
    symbol: str
    exchange: Exchange
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    product: Product
    routing_objective: RoutingObjective
    status: str = Field(examples=["ROUTED", "FILLED", "OVERFILLED"])
    created_at: Timestamp
    decision_id: int | None = None
    routing_strategy: RoutingObjective | None = None
    confidence_score: float | None = None
    expected_execution_time_ms: int | None = None
    expected_slippage_bps: float | None = None
    expected_price: Decimal | None = None
    expected_fill_probability: float | None = None
    expected_charges_inr: Decimal | None = None
    fallback_broker_ids: tuple[str, ...] = ()


class AllocationView(_View):
    """One broker's planned share (cascaded ones name the broker they came from)."""

    broker_id: str
    quantity: int | None = None
    allocation_percentage: Decimal
    expected_execution_price: Decimal | None = None
    priority: int
    status: str
    slices: int = 1
    cascaded_from: str | None = None


class ChildOrderView(_View):
    """A child order sent (or to be sent) to one broker."""

    child_order_id: str
    broker_id: str
    broker_order_id: str | None = None
    quantity: int
    status: str
    filled_quantity: int
    average_price: Decimal | None = None
    attempt: int
    status_reason: str | None = None
    placed_at: Timestamp | None = None


class ExecutionView(_View):
    """An execution report as the tracker measured it."""

    child_order_id: str | None = None
    broker_id: str
    status: str | None = None
    filled_quantity: int | None = None
    fill_price: Decimal | None = None
    execution_latency_ms: int | None = None
    slippage_bps: float | None = None
    price_improvement_bps: float | None = None
    fill_rate: float | None = None
    execution_quality_score: float | None = None
    charges_inr: Decimal | None = None
    created_at: Timestamp | None = None


class OrderView(_View):
    """What ``GET /orders/{orderId}`` returns: the audit trail of one of the caller's orders."""

    order: OrderSummary
    allocations: tuple[AllocationView, ...]
    child_orders: tuple[ChildOrderView, ...]
    executions: tuple[ExecutionView, ...]
