"""Child orders: what is sent to each broker, how it is sliced and priced, what it teaches."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import Field

from shared.domain.execution import ProfileObservation
from shared.domain.models import (
    Exchange,
    FrozenModel,
    OrderType,
    Product,
    Side,
)

TICK_SIZE = Decimal("0.05")
"""Price tick of NSE/BSE cash equities."""


class ChildOrderStatus(StrEnum):
    """Life cycle of one child order at one broker."""

    PENDING = "PENDING"
    PLACED = "PLACED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        """True when nothing more will happen to the child."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        ChildOrderStatus.FILLED,
        ChildOrderStatus.REJECTED,
        ChildOrderStatus.TIMED_OUT,
        ChildOrderStatus.CANCELLED,
    }
)


class ChildOrder(FrozenModel):
    """One order sent (or to be sent) to one broker for part of a parent order."""

    child_order_id: str = Field(min_length=1, max_length=50)
    order_id: str
    user_id: str
    broker_id: str
    symbol: str
    exchange: Exchange
    side: Side
    quantity: int = Field(gt=0)
    order_type: OrderType
    product: Product
    limit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    expected_price: Decimal | None = None
    arrival_bid: Decimal | None = None
    arrival_ask: Decimal | None = None
    priority: int = 1
    attempt: int = 1
    cascaded_from: str | None = None
    """Broker whose rejection or timeout sent this quantity here."""
    status: ChildOrderStatus = ChildOrderStatus.PENDING
    broker_order_id: str | None = None
    status_reason: str | None = None
    filled_quantity: int = 0
    average_price: Decimal | None = None
    placed_at: datetime | None = None
    """When we sent the order to the broker: the start of its execution latency."""


def split_into_slices(quantity: int, lot_size: int, freeze_quantity: int | None) -> list[int]:
    """Split a child quantity into orders no larger than the exchange's freeze quantity.

    Slices are whole lots and as equal as possible (the first ones take the remainder), so no
    slice is a useless sliver. Without a freeze quantity, or below it, there is one slice.

    Parameters
    ----------
    quantity
        Shares to send; a multiple of ``lot_size``.
    lot_size
        Shares per lot.
    freeze_quantity
        Largest quantity one order may carry, or ``None``.

    Returns
    -------
    list[int]
        Slice quantities summing to ``quantity``.
    """
    if freeze_quantity is None or quantity <= freeze_quantity:
        return [quantity]
    lots = quantity // lot_size
    max_lots = max(1, freeze_quantity // lot_size)
    slices = -(-lots // max_lots)
    base, extra = divmod(lots, slices)
    return [(base + (1 if i < extra else 0)) * lot_size for i in range(slices)]


def round_to_tick(price: Decimal, tick: Decimal = TICK_SIZE) -> Decimal:
    """Round a price to the nearest tick (half up)."""
    return (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick


def placement_observation(
    status: ChildOrderStatus, response_time_ms: float | None
) -> ProfileObservation | None:
    """What placing one child order teaches its broker's profile, or ``None``.

    ============ ================== =========== ========================================
    status       ack latency        fill rate   error-rate sample
    ============ ================== =========== ========================================
    PLACED       the measured ack   --          -- (its terminal report gives the sample)
    REJECTED     the measured ack   0           error
    TIMED_OUT    the timeout bound  0           error
    ============ ================== =========== ========================================

    A placement reject or timeout never gets a report that changes the child (it is stored
    REJECTED / TIMED_OUT with the placement), so this is the only time it is observed. A
    timed-out child that fills late is observed again by that report, as the execution it was.

    Parameters
    ----------
    status
        The child's status after placement.
    response_time_ms
        How long the broker took to answer; for a timeout, the bound we waited.

    Returns
    -------
    ProfileObservation | None
        ``None`` for a status placement does not produce.
    """
    if status is ChildOrderStatus.PLACED:
        if response_time_ms is None:
            return None
        return ProfileObservation(response_time_ms=response_time_ms, is_error=None)
    if status in (ChildOrderStatus.REJECTED, ChildOrderStatus.TIMED_OUT):
        return ProfileObservation(
            response_time_ms=response_time_ms,
            fill_rate_pct=0.0,
            is_error=True,
            is_timeout=status is ChildOrderStatus.TIMED_OUT,
        )
    return None
