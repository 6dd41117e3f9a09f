"""FASTEST_EXECUTION: the shortest expected time to fill, even at a higher cost."""

from __future__ import annotations

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import FactorWeights, OrderTraits, Valuation

_WEIGHTS = FactorWeights(speed=0.55, price=0.10, reliability=0.20, liquidity=0.10, cost=0.05)
TIME_BPS_PER_S = 100.0
"""One second of a share's wait is worth 100 bps of its price (1 bp per 10 ms): time decides
unless the faster plan costs more than 1 bp per 10 ms saved."""


class FastestExecutionStrategy:
    """Minimises the expected time to fill (valued at ``TIME_BPS_PER_S``) plus the all-in cost."""

    objective = RoutingObjective.FASTEST_EXECUTION
    valuation = Valuation(market=1.0, charges=1.0, time_bps_per_s=TIME_BPS_PER_S)

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Fixed weights: speed 0.55, reliability 0.20, price 0.10, liquidity 0.10, cost 0.05."""
        return _WEIGHTS
