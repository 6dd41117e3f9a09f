"""BEST_PRICE: the execution price first (price improvement, slippage, spread), then liquidity."""

from __future__ import annotations

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import FactorWeights, OrderTraits

_WEIGHTS = FactorWeights(speed=0.05, price=0.55, reliability=0.15, liquidity=0.15, cost=0.10)


class BestPriceStrategy:
    """Weighs price quality most; liquidity next, since impact is part of the price paid."""

    objective = RoutingObjective.BEST_PRICE

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Fixed weights: price 0.55, reliability 0.15, liquidity 0.15, cost 0.10, speed 0.05."""
        return _WEIGHTS
