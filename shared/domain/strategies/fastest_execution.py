"""FASTEST_EXECUTION: latency first, then reliability (a reject costs a cascade round trip)."""

from __future__ import annotations

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import FactorWeights, OrderTraits

_WEIGHTS = FactorWeights(speed=0.55, price=0.10, reliability=0.20, liquidity=0.10, cost=0.05)


class FastestExecutionStrategy:
    """Weighs the speed score most; reliability next because a rejected child must cascade."""

    objective = RoutingObjective.FASTEST_EXECUTION

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Fixed weights: speed 0.55, reliability 0.20, price 0.10, liquidity 0.10, cost 0.05."""
        return _WEIGHTS
