"""Child orders of a routed order, and where a failed child's quantity cascades to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared.domain.eligibility import exclusion_reason
from shared.domain.models import BrokerProfile, OrderRequest, Quote
from shared.domain.orders import ChildOrder


def new_child(
    order: OrderRequest,
    arrival: Quote | None,
    *,
    child_order_id: str,
    broker_id: str,
    quantity: int,
    expected_price: Decimal | None,
    priority: int,
    attempt: int = 1,
    cascaded_from: str | None = None,
) -> ChildOrder:
    """A ``PENDING`` child order of ``order`` for ``quantity`` at ``broker_id``.

    Parameters
    ----------
    order
        The parent order: its trader, instrument, side, type and prices.
    arrival
        The server's quote when the order arrived, never the client's: executions are measured
        against it and what they teach is shared by every trader.
    child_order_id, broker_id, quantity, expected_price, priority
        The child's own fields.
    attempt
        1 for an allocation's child, one more per cascade hop.
    cascaded_from
        The broker whose rejection or timeout sent this quantity here.
    """
    return ChildOrder(
        child_order_id=child_order_id,
        order_id=order.order_id,
        user_id=order.user_id,
        broker_id=broker_id,
        symbol=order.symbol,
        exchange=order.exchange,
        side=order.side,
        quantity=quantity,
        order_type=order.order_type,
        product=order.product,
        limit_price=order.limit_price,
        trigger_price=order.trigger_price,
        expected_price=expected_price,
        arrival_bid=arrival.bid if arrival else None,
        arrival_ask=arrival.ask if arrival else None,
        priority=priority,
        attempt=attempt,
        cascaded_from=cascaded_from,
    )


@dataclass(frozen=True, slots=True)
class CascadeTarget:
    """Where a failed child's quantity goes, and why the better-ranked brokers did not take it."""

    broker_id: str | None
    """The best-ranked broker that can take the whole quantity; ``None`` when none can."""
    skipped: tuple[tuple[str, str], ...] = ()
    """``(broker_id, reason)`` of each broker ranked above it that eligibility excluded (brokers
    that already failed this order are not repeated here: their own cascade says why)."""


def choose_cascade_target(
    order: OrderRequest,
    quantity: int,
    ranked: Sequence[str],
    profiles: Mapping[str, BrokerProfile],
    *,
    failed: AbstractSet[str],
    now: datetime,
    max_profile_age_s: int,
    recent_orders: Mapping[str, int],
    max_market_age_s: float | None = None,
) -> CascadeTarget:
    """The first broker of ``ranked`` that has not failed ``order`` and may take ``quantity``.

    A target must pass the engine's own eligibility for the child's quantity
    (:func:`~shared.domain.eligibility.exclusion_reason`: status, symbol, order type, lot,
    minimum size, staleness and rate limit, as of ``now``), and take the quantity in one order
    (not above its maximum order size; the freeze quantity is handled by slicing).

    Parameters
    ----------
    order
        The parent order.
    quantity
        The failed child's quantity.
    ranked
        Broker ids in the decision's order: allocated brokers by priority, then fallbacks.
    profiles
        Profiles by broker id, as read for the decision.
    failed
        Brokers that rejected or timed out a child of this order.
    now
        Current time (profile staleness).
    max_profile_age_s
        The engine's staleness bound.
    recent_orders
        Orders sent to each broker in the current second, this order's own placements included.
    max_market_age_s
        The engine's bound on the age of market figures (``STALE_MARKET_DATA``).

    Returns
    -------
    CascadeTarget
        The target (or ``None``) with the reasons of the brokers passed over.
    """
    child_order = order.model_copy(update={"quantity": quantity})
    skipped: list[tuple[str, str]] = []
    for broker_id in ranked:
        if broker_id in failed:
            continue
        reason = _refusal(
            child_order,
            profiles.get(broker_id),
            now=now,
            max_profile_age_s=max_profile_age_s,
            recent_orders=recent_orders.get(broker_id, 0),
            max_market_age_s=max_market_age_s,
        )
        if reason is None:
            return CascadeTarget(broker_id, tuple(skipped))
        skipped.append((broker_id, reason))
    return CascadeTarget(None, tuple(skipped))


def _refusal(
    order: OrderRequest,
    profile: BrokerProfile | None,
    *,
    now: datetime,
    max_profile_age_s: int,
    recent_orders: int,
    max_market_age_s: float | None,
) -> str | None:
    if profile is None:
        return f"no profile for {order.symbol}"
    reason = exclusion_reason(
        order,
        profile,
        now=now,
        max_profile_age_s=max_profile_age_s,
        recent_orders=recent_orders,
        max_market_age_s=max_market_age_s,
    )
    too_big = profile.max_order_size is not None and order.quantity > profile.max_order_size
    if reason is None and too_big:
        return (
            f"quantity {order.quantity} is above the broker's maximum order size "
            f"{profile.max_order_size}"
        )
    return reason
