"""Routing strategies: one module per objective behind :class:`RoutingStrategy`, and a registry."""

from shared.domain.strategies.base import (
    FactorWeights,
    OrderTraits,
    RoutingStrategy,
    Valuation,
)
from shared.domain.strategies.registry import STRATEGIES, get_strategy

__all__ = [
    "STRATEGIES",
    "FactorWeights",
    "OrderTraits",
    "RoutingStrategy",
    "Valuation",
    "get_strategy",
]
