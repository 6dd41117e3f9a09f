"""BEST_PRICE: the best expected execution price, before charges."""

from __future__ import annotations

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import TIE_BREAK, FactorWeights, OrderTraits, Valuation

_WEIGHTS = FactorWeights(speed=0.05, price=0.55, reliability=0.15, liquidity=0.15, cost=0.10)


class BestPriceStrategy:
    """Minimises the expected execution price; charges only break ties.

    The price counts half spread, net slippage, impact and the non-fill penalty (a share that
    does not fill here executes later, at a worse price).
    """

    objective = RoutingObjective.BEST_PRICE
    valuation = Valuation(market=1.0, charges=TIE_BREAK)

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Fixed weights: price 0.55, reliability 0.15, liquidity 0.15, cost 0.10, speed 0.05."""
        return _WEIGHTS
