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


@dataclass(frozen=True, slots=True)
class Valuation:
    """How an objective turns a plan's expected outcome into the INR the splitter minimises.

    ``objective = market x M + charges x C + child orders x child_cost + time value``, where
    ``M`` is the market cost (half spread, net slippage, square-root impact, non-fill penalty),
    ``C`` the charges (brokerage + GST, statutory charges, DP). A share expected to wait ``T``
    seconds to fill is charged ``P x (time_bps_per_s x T + timing_risk_sd x sigma x sqrt(T / S))
    x 1e-4`` INR, with ``P`` the reference price, ``sigma`` the daily volatility (bps) and ``S``
    the seconds of a session: a linear value of time, and a number of standard deviations of the
    price move while waiting (timing risk).

    Attributes
    ----------
    market, charges
        Weights of the market cost and of the charges.
    time_bps_per_s
        Value of one second of a share's wait, in bps of its price.
    timing_risk_sd
        Standard deviations of the price move over the wait charged as cost.
    """

    market: float
    charges: float
    time_bps_per_s: float = 0.0
    timing_risk_sd: float = 0.0


TIE_BREAK = 1e-3
"""Weight of a cost an objective leaves out: it only decides between otherwise equal plans."""


class RoutingStrategy(Protocol):
    """One routing objective: what it minimises, and how much each factor counts in the scores."""

    @property
    def objective(self) -> RoutingObjective:
        """The objective this strategy implements."""
        ...

    @property
    def valuation(self) -> Valuation:
        """What the splitter minimises for this objective."""
        ...

    def weights(self, traits: OrderTraits) -> FactorWeights:
        """Factor weights for an order with these traits, summing to 1."""
        ...
