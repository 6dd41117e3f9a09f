"""Which brokers may take an order, and why the others may not."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from shared.domain.broker_links import BrokerLink, link_reason
from shared.domain.models import BrokerProfile, BrokerStatus, OrderRequest

EXCLUDED_STATUSES = frozenset(
    {BrokerStatus.OFFLINE, BrokerStatus.MAINTENANCE, BrokerStatus.ERROR, BrokerStatus.SUSPENDED}
)
LOT_REASON_PREFIX = "quantity is not a whole number of lots"
STALE_MARKET_DATA = "STALE_MARKET_DATA"
"""Prefix of the reason of a broker whose market figures are too old to route on."""


def profile_age_s(profile: BrokerProfile, now: datetime) -> float:
    """Seconds since the profile was last updated (0 for a timestamp in the future)."""
    return max(0.0, (now - profile.last_updated).total_seconds())


def market_age_s(profile: BrokerProfile, now: datetime) -> float | None:
    """Seconds since the profile's market figures came from a quote; ``None`` if never."""
    if profile.market_updated_at is None:
        return None
    return max(0.0, (now - profile.market_updated_at).total_seconds())


def exclusion_reason(
    order: OrderRequest,
    profile: BrokerProfile,
    *,
    now: datetime,
    max_profile_age_s: int,
    recent_orders: int,
    max_market_age_s: float | None = None,
) -> str | None:
    """Why ``profile``'s broker cannot take any part of ``order``, or ``None`` if it can.

    Checks, first failing wins: status (OFFLINE, MAINTENANCE, ERROR, SUSPENDED; BUSY is only
    penalised), symbol, order type, lot size, minimum order size above the order, maximum order
    size below one lot, market figures older than ``max_market_age_s`` (reason starting
    ``STALE_MARKET_DATA``), and the rate limit (``recent_orders`` sent in the last second
    against ``rate_limit_per_s``).

    A profile that learned nothing for ``max_profile_age_s`` (a quiet symbol) is **not**
    excluded: its freshness, and with it its reliability score and the decision's confidence,
    falls towards zero (:func:`shared.domain.scoring.freshness`), and its beliefs widen back
    towards the priors as the symbol's other brokers learn (docs/routing-engine.md, "Eligibility").

    Parameters
    ----------
    order
        The order.
    profile
        The broker's execution profile for the order's symbol.
    now
        Current time, tz-aware like ``profile.last_updated``.
    max_profile_age_s
        Kept for the callers' signature: the age of what was learned lowers confidence, it
        does not exclude.
    recent_orders
        Orders sent to this broker in the last second.
    max_market_age_s
        Market figures taken from a quote longer ago than this exclude the broker; ``None``
        (or figures never taken from a quote) checks nothing.

    Returns
    -------
    str | None
        A sentence for the trader, or ``None``.
    """
    del max_profile_age_s  # a quiet profile routes with less confidence (see above)
    return next(_reasons(order, profile, now, max_market_age_s, recent_orders), None)


def _reasons(
    order: OrderRequest,
    profile: BrokerProfile,
    now: datetime,
    max_market_age_s: float | None,
    recent_orders: int,
) -> Iterator[str]:
    if profile.status in EXCLUDED_STATUSES:
        yield f"broker is {profile.status.value}"
    if profile.symbol != order.symbol:
        yield f"profile is for {profile.symbol}, not {order.symbol}"
    if order.order_type not in profile.supported_order_types:
        yield f"order type {order.order_type.value} not supported"
    if order.quantity % profile.lot_size:
        yield f"{LOT_REASON_PREFIX} of {profile.lot_size}"
    if profile.min_order_size is not None and profile.min_order_size > order.quantity:
        yield (
            f"order quantity {order.quantity} is below the broker's minimum of "
            f"{profile.min_order_size}"
        )
    if profile.max_order_size is not None and profile.max_order_size < profile.lot_size:
        yield f"broker's maximum order size {profile.max_order_size} is below one lot"
    age = market_age_s(profile, now)
    if max_market_age_s is not None and age is not None and age > max_market_age_s:
        yield (
            f"{STALE_MARKET_DATA}: market data taken {int(age)} s ago "
            f"(limit {int(max_market_age_s)} s)"
        )
    if profile.rate_limit_per_s is not None and recent_orders >= profile.rate_limit_per_s:
        yield (
            f"rate limit exhausted: {recent_orders} of {profile.rate_limit_per_s} orders "
            "in the last second"
        )


def access_reasons(
    adapters: Mapping[str, str], links: Mapping[str, BrokerLink], *, now: datetime
) -> dict[str, str]:
    """Brokers this trader cannot route to whatever the order, with the reason.

    A real broker (Kite, Upstox, Dhan) takes orders only under the trader's own LIVE link; a
    broker whose adapter this build does not have takes none; a paper broker needs no link.

    Parameters
    ----------
    adapters
        Broker id -> ``brokers.adapter`` of the enabled brokers.
    links
        Broker id -> the trader's link to it.
    now
        Current time (a LIVE link past its expiry is expired).

    Returns
    -------
    dict[str, str]
        Broker id -> reason, for the excluded ones only.
    """
    reasons: dict[str, str] = {}
    for broker_id, adapter in adapters.items():
        reason = link_reason(broker_id, adapter, links.get(broker_id), now)
        if reason is not None:
            reasons[broker_id] = reason
    return reasons
