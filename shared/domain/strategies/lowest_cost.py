"""LOWEST_COST: the least all-in cost, charges plus market cost."""

from __future__ import annotations

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import FactorWeights, OrderTraits, Valuation

_WEIGHTS = FactorWeights(speed=0.05, price=0.15, reliability=0.15, liquidity=0.10, cost=0.55)


class LowestCostStrategy:
    """Minimises the expected money cost: charges + spread + slippage + impact + non-fill."""

    objective = RoutingObjective.LOWEST_COST
    valuation = Valuation(market=1.0, charges=1.0)

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Fixed weights: cost 0.55, price 0.15, reliability 0.15, liquidity 0.10, speed 0.05."""
        return _WEIGHTS
