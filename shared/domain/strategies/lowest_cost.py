"""LOWEST_COST: the broker's own charges first (brokerage, DP), then price and reliability."""

from __future__ import annotations

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import FactorWeights, OrderTraits

_WEIGHTS = FactorWeights(speed=0.05, price=0.15, reliability=0.15, liquidity=0.10, cost=0.55)


class LowestCostStrategy:
    """Weighs the cost score most (statutory charges are the same everywhere, brokerage is not)."""

    objective = RoutingObjective.LOWEST_COST

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Fixed weights: cost 0.55, price 0.15, reliability 0.15, liquidity 0.10, speed 0.05."""
        return _WEIGHTS
