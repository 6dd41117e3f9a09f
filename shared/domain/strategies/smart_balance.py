"""SMART_BALANCE: the all-in cost plus the risk of waiting to fill (timing risk)."""

from __future__ import annotations

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import FactorWeights, OrderTraits, Valuation

BASE = 0.20
MARKET_SPEED_BONUS = 0.15
"""A market order has no price protection: every millisecond in flight is exposure."""
LIMIT_PRICE_BONUS = 0.15
"""A limit order names its price: where it sits against the spread decides the fill."""
LARGE_LIQUIDITY_BONUS = 0.20
"""Added in full when the order is at least ``LARGE_SIZE_TO_DEPTH`` of the deepest book."""
LARGE_SIZE_TO_DEPTH = 0.10


class SmartBalanceStrategy:
    """All-in cost plus timing risk; factor weights balanced and shifted by the order's traits.

    The splitter minimises the LOWEST_COST objective plus one standard deviation of the price
    move while each share waits to fill (``sigma x sqrt(T / session)``): a slow broker must be
    cheaper by its timing risk, and a large order spreads its slices over brokers to fill sooner.

    The factor weights (for the scores that rank allocations and fallbacks) start from 0.2 on
    each factor; add 0.15 to speed for a market order, 0.15 to price for a limit
    order, and up to 0.2 to liquidity in proportion to ``size_to_depth / 0.1`` (capped at 1), then
    renormalise to sum to 1.
    """

    objective = RoutingObjective.SMART_BALANCE
    valuation = Valuation(market=1.0, charges=1.0, timing_risk_sd=1.0)

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Weights for ``traits``: see the class docstring."""
        largeness = min(1.0, traits.size_to_depth / LARGE_SIZE_TO_DEPTH)
        return FactorWeights(
            speed=BASE + (MARKET_SPEED_BONUS if traits.is_market else 0.0),
            price=BASE + (LIMIT_PRICE_BONUS if traits.is_limit else 0.0),
            reliability=BASE,
            liquidity=BASE + LARGE_LIQUIDITY_BONUS * largeness,
            cost=BASE,
        ).normalised()
