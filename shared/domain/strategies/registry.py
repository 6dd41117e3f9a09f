"""Objective -> strategy. A new objective is one new module and one line here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shared.domain.models import RoutingObjective
from shared.domain.strategies.base import RoutingStrategy
from shared.domain.strategies.best_price import BestPriceStrategy
from shared.domain.strategies.fastest_execution import FastestExecutionStrategy
from shared.domain.strategies.lowest_cost import LowestCostStrategy
from shared.domain.strategies.smart_balance import SmartBalanceStrategy

_STRATEGIES: tuple[RoutingStrategy, ...] = (
    BestPriceStrategy(),
    FastestExecutionStrategy(),
    LowestCostStrategy(),
    SmartBalanceStrategy(),
)

STRATEGIES: Mapping[RoutingObjective, RoutingStrategy] = MappingProxyType(
    {s.objective: s for s in _STRATEGIES}
)
"""Every registered strategy by objective (read-only)."""


def get_strategy(objective: RoutingObjective) -> RoutingStrategy:
    """The strategy of ``objective``.

    Raises
    ------
    KeyError
        No strategy is registered for ``objective``.
    """
    return STRATEGIES[objective]
