"""The routing-quality benchmark's yardstick: its closed-form cost matches the paper broker."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bench.quality import (
    DISCOUNT,
    FLAT_20,
    MISS_BPS,
    PRICE,
    TIME_BPS_PER_S,
    TIMEOUT_S,
    Truth,
    expected_cost,
)
from shared.adapters.brokers.paper import PaperBroker
from shared.domain.charges import brokerage_per_order
from shared.domain.models import Exchange, OrderType, Product, Quote, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus

DRAWS = 20_000


class NoMarket:
    def quote(self, symbol: str) -> Quote | None:
        return None


def realised_cost(broker: PaperBroker, truth: Truth, quantity: int, n: int) -> float:
    """What one placement cost, by the same rules the closed form prices."""
    child = ChildOrder(
        child_order_id=f"ord-0123456789abcdef0123456789abcdef-1-{n}",
        order_id="ord-0123456789abcdef0123456789abcdef",
        user_id="trader-1",
        broker_id="papr",
        symbol="RELIANCE",
        exchange=Exchange.NSE,
        side=Side.BUY,
        quantity=quantity,
        order_type=OrderType.MARKET,
        product=Product.MIS,
        expected_price=Decimal(str(PRICE)),
    )
    result = broker.place(child, timeout_s=TIMEOUT_S)
    notional = quantity * PRICE
    if result.status is ChildOrderStatus.TIMED_OUT:
        return notional * (MISS_BPS + TIMEOUT_S * TIME_BPS_PER_S) / 10_000
    waited = notional * (result.response_time_ms or 0) / 1000 * TIME_BPS_PER_S / 10_000
    if result.status is ChildOrderStatus.REJECTED:
        return notional * MISS_BPS / 10_000 + waited
    last = result.reports[-1]
    assert last.average_price is not None
    filled = last.filled_quantity
    paid = filled * float(last.average_price)
    fee = float(brokerage_per_order(truth.brokerage, Decimal(str(round(paid, 2)))))
    missed = (quantity - filled) * PRICE * MISS_BPS / 10_000
    return paid - filled * PRICE + fee + missed + waited


@pytest.mark.parametrize(
    ("truth", "quantity"),
    [
        # rejects, timeouts and partial fills, small order (brokerage below its cap)
        (
            Truth(
                DISCOUNT,
                {
                    "rejectRate": 0.2,
                    "timeoutRate": 0.1,
                    "partialFillRate": 0.35,
                    "slippageBpsMean": 4.0,
                    "slippageBpsStd": 2.0,
                    "ackLatencyMs": 60,
                },
            ),
            20,
        ),
        # so slow that about half of the acknowledgements come after the placement timeout
        (
            Truth(
                FLAT_20,
                {
                    "rejectRate": 0.02,
                    "partialFillRate": 0.05,
                    "slippageBpsMean": 1.0,
                    "ackLatencyMs": TIMEOUT_S * 1000,
                    "ackJitterMs": 300,
                },
            ),
            800,
        ),
    ],
)
def test_the_closed_form_cost_matches_the_paper_brokers_draws(truth: Truth, quantity: int) -> None:
    # GIVEN a paper broker with a known truth
    broker = PaperBroker(
        "papr", truth.paper(), NoMarket(), seed=5, clock=lambda: datetime(2026, 12, 1, tzinfo=UTC)
    )
    # WHEN it places many children and each outcome is costed as the benchmark prices it
    costs = [realised_cost(broker, truth, quantity, n) for n in range(DRAWS)]
    # THEN the benchmark's closed form is the mean to within three standard errors (tick
    # rounding of fill prices aside)
    mean = statistics.fmean(costs)
    error = statistics.stdev(costs) / DRAWS**0.5
    assert abs(mean - expected_cost(truth, quantity)) <= 3 * error + 0.002 * mean
