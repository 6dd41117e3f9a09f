"""What every routing strategy shares: the weights it returns and the order traits it sees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.domain.models import RoutingObjective


@dataclass(frozen=True, slots=True)
class FactorWeights:
    """Weights of the five factor scores; :meth:`normalised` makes them sum to 1."""

    speed: float
    price: float
    reliability: float
    liquidity: float
    cost: float

    def normalised(self) -> FactorWeights:
        """The same weights scaled to sum to 1 (negative weights are a programming error).

        Raises
        ------
        ValueError
            A weight is negative or all are zero.
        """
        values = (self.speed, self.price, self.reliability, self.liquidity, self.cost)
        total = sum(values)
        if min(values) < 0 or total <= 0:
            raise ValueError("factor weights must be non-negative and not all zero")
        return FactorWeights(*(v / total for v in values))


@dataclass(frozen=True, slots=True)
class OrderTraits:
    """What a strategy may look at in an order.

    Attributes
    ----------
    is_market
        MARKET or STOP_LOSS_MARKET: no price protection, speed matters.
    is_limit
        LIMIT or STOP_LOSS: the trader named a price, price quality matters.
    size_to_depth
        Order quantity over the deepest eligible broker's ``order_book_depth`` (``inf`` when no
        broker reports depth): above ~0.1 the order eats into the book and liquidity matters.
    """

    is_market: bool
    is_limit: bool
    size_to_depth: float


class RoutingStrategy(Protocol):
    """One routing objective: how much each factor counts for an order."""

    @property
    def objective(self) -> RoutingObjective:
        """The objective this strategy implements."""
        ...

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Factor weights for an order with these traits, summing to 1."""
        ...
