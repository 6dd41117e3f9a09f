"""Day one: the market figures a profile starts from when no broker has one for the symbol.

A symbol nobody has routed yet has no profile anywhere, so there is no other broker's profile to
take the symbol's spread, depth, volume and last price from. They come from the market-data
source's fresh quote instead (:func:`shared.domain.market.statistics_of`); what is learned from
executions (latency, fills, errors, slippage) comes from each broker's broker-wide posterior,
whose own prior is :data:`shared.domain.learning.DAY_ONE` (docs/routing-engine.md, "Day one").
Without a fresh quote there is no template: the symbol stays unknown to routing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.domain.learning import DAY_ONE
from shared.domain.market import MarketStatistics
from shared.domain.models import BrokerProfile

TEMPLATE_BROKER_ID = "day-one"
"""Placeholder broker of the template; every profile made from it carries its own broker id."""
DEFAULT_SPREAD_BPS = 5.0
"""Spread assumed when the quote's book is one-sided (the profile column's default)."""


INSTRUMENT_MAPS = {"upstox": ("instruments",), "dhan": ("security_ids", "securityIds")}
"""Adapters that can only send a symbol their ``adapterConfig`` maps, and the map's keys."""


def trades_symbol(
    adapter: str, adapter_config: Mapping[str, Any], symbol: str, exchange: str = "NSE"
) -> bool:
    """Whether a broker can be sent ``symbol`` at all (the day-one profiles' broker filter).

    Upstox and Dhan name instruments by their own ids, from a map in ``adapterConfig``: a
    symbol missing there cannot be sent (the adapter refuses it before any call), so such a
    broker gets no day-one profile for it. Every other adapter trades whatever is listed.
    """
    names = INSTRUMENT_MAPS.get(adapter)
    if names is None:
        return True
    key = f"{exchange}:{symbol}"
    return any(key in (adapter_config.get(name) or {}) for name in names)


def never_priced(profiles: Sequence[BrokerProfile]) -> bool:
    """True when none of ``profiles`` ever had market figures (rows a first fill created).

    A symbol's first outcome creates its row without market figures when no other profile of
    the symbol had any to copy (a day-one symbol): no depth, no volume, never refreshed. Until
    the statistics refresh reaches the symbol, routing takes the figures from a fresh quote.
    """
    return bool(profiles) and all(
        p.market_updated_at is None and p.order_book_depth == 0 and p.recent_volume == 0
        for p in profiles
    )


def with_market(profile: BrokerProfile, stats: MarketStatistics) -> BrokerProfile:
    """``profile`` with the market figures of ``stats`` (a fresh quote's)."""
    update: dict[str, object] = {
        "order_book_depth": stats.order_book_depth,
        "recent_volume": stats.volume,
        "market_updated_at": stats.observed_at,
    }
    if stats.spread_bps is not None:
        update["current_spread_bps"] = stats.spread_bps
    if stats.last_price is not None:
        update["last_price"] = stats.last_price
    return profile.model_copy(update=update)


def market_template(stats: MarketStatistics, now: datetime) -> BrokerProfile:
    """A profile carrying the symbol's market figures and the day-one priors' means.

    Parameters
    ----------
    stats
        The symbol's statistics from a fresh quote.
    now
        When the template is made: its ``last_updated`` (the engine sees a fresh profile
        whose ``sample_count`` of 0 keeps its confidence low).

    Returns
    -------
    BrokerProfile
        A template for :func:`shared.adapters.postgres.profiles.day_one_profiles`.
    """
    return BrokerProfile(
        broker_id=TEMPLATE_BROKER_ID,
        symbol=stats.symbol,
        avg_execution_time_ms=DAY_ONE.latency.mean,
        fill_rate_percentage=100 * DAY_ONE.fill.mean,
        price_improvement_bps=DAY_ONE.improvement.mean,
        slippage_bps=DAY_ONE.slippage.mean,
        current_spread_bps=stats.spread_bps if stats.spread_bps is not None else DEFAULT_SPREAD_BPS,
        order_book_depth=stats.order_book_depth,
        recent_volume=stats.volume,
        response_time_ms=DAY_ONE.ack.mean,
        error_rate_percentage=100 * DAY_ONE.error.mean,
        last_updated=now,
        sample_count=0,
        last_price=stats.last_price,
        market_updated_at=stats.observed_at,
    )
