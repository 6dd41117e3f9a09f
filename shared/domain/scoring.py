"""The five factor scores of a broker for an order, each in [0, 1], and their weighted total.

Every score is an absolute function of the broker's own profile and the order, never relative to
the other brokers given: adding or removing a broker leaves the others' scores unchanged, which
keeps decisions independent of the list's order and composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.domain.models import BrokerProfile, BrokerStatus
from shared.domain.strategies.base import FactorWeights

SPEED_REF_MS = 200.0
"""Latency scoring 0.5."""
PRICE_SCALE_BPS = 5.0
"""Net price edge (bps) that moves the price score from 0.5 to 0.73."""
LIQUIDITY_REF = 0.1
"""``sqrt(Q / V)`` scoring 0.5, i.e. an order of 1 % of the broker's liquidity measure."""
COST_REF_BPS = 2.0
"""The broker's own charges (bps of notional) scoring 0.5."""
BUSY_RELIABILITY_FACTOR = 0.5
"""A BUSY broker still takes orders, but they queue and reject more often."""
_STATUS_RELIABILITY = {BrokerStatus.AVAILABLE: 1.0, BrokerStatus.BUSY: BUSY_RELIABILITY_FACTOR}


@dataclass(frozen=True, slots=True)
class FactorScores:
    """The five factor scores of one broker for one order."""

    speed: float
    price: float
    reliability: float
    liquidity: float
    cost: float

    def total(self, weights: FactorWeights) -> float:
        """Weighted sum with weights summing to 1, clamped to [0, 1] against rounding."""
        value = (
            weights.speed * self.speed
            + weights.price * self.price
            + weights.reliability * self.reliability
            + weights.liquidity * self.liquidity
            + weights.cost * self.cost
        )
        return min(1.0, max(0.0, value))


def speed_score(profile: BrokerProfile) -> float:
    """Speed: ``t0 / (t0 + t)`` with ``t = 0.8 avg_execution_time_ms + 0.2 response_time_ms``.

    ``t0`` = 200 ms scores 0.5; 0 ms scores 1. Execution time (submit to fill) dominates; the API
    response time adds the acknowledgement latency the trader sees first.
    """
    t = 0.8 * profile.avg_execution_time_ms + 0.2 * profile.response_time_ms
    return SPEED_REF_MS / (SPEED_REF_MS + t)


def price_quality_score(profile: BrokerProfile) -> float:
    """Price quality: ``1 / (1 + exp(-e / 5))`` of the net edge ``e`` in bps.

    ``e = price_improvement_bps - slippage_bps - current_spread_bps / 2``: what the broker's fills
    historically gained against the arrival mid, less the half spread crossed. An edge of 0 scores
    0.5, +5 bps 0.73, -5 bps 0.27.
    """
    edge = profile.price_improvement_bps - profile.slippage_bps - profile.current_spread_bps / 2
    return 1.0 / (1.0 + math.exp(-edge / PRICE_SCALE_BPS))


def freshness(profile: BrokerProfile, age_s: float, max_age_s: float) -> float:
    """``max(0, 1 - age / max_age)``: 1 for a profile updated now, 0 at the staleness limit."""
    return max(0.0, 1.0 - max(age_s, 0.0) / max_age_s) if max_age_s > 0 else 0.0


def reliability_score(profile: BrokerProfile, fresh: float) -> float:
    """Reliability: ``fill_rate x status x freshness``.

    ``fill_rate`` as a fraction: it already counts a rejected child as 0 % filled, so the error
    rate is not multiplied in again. ``status`` is 1 when AVAILABLE, 0.5 when BUSY, 0 otherwise;
    ``freshness`` (see :func:`freshness`) discounts what an old profile claims.
    """
    status = _STATUS_RELIABILITY.get(profile.status, 0.0)
    return profile.fill_rate_percentage / 100 * status * fresh


def liquidity_score(quantity: int, liquidity: float) -> float:
    """Liquidity: ``1 / (1 + sqrt(Q / V) / 0.1)``.

    ``sqrt(Q / V)`` is the square-root law's impact in units of daily volatility, ``V`` the
    broker's liquidity measure (see the engine); an order of 1 % of ``V`` scores 0.5, 0.01 % 0.91.
    """
    if liquidity <= 0:
        return 0.0
    return 1.0 / (1.0 + math.sqrt(quantity / liquidity) / LIQUIDITY_REF)


def cost_score(own_charges_inr: float, notional_inr: float) -> float:
    """Cost: ``1 / (1 + c / 2)`` with ``c`` the broker's own charges in bps of the notional.

    Own charges are brokerage (with GST) and the DP charge: statutory charges are the same at
    every broker and would only compress the scale. Zero brokerage scores 1; 2 bps scores 0.5.
    """
    bps = own_charges_inr / notional_inr * 10_000 if notional_inr > 0 else 0.0
    return 1.0 / (1.0 + bps / COST_REF_BPS)
