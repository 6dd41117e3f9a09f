"""Each objective minimises what its name says, so each chooses differently from the others."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.engine import decide_route
from shared.domain.models import BrokerProfile, FeeSchedule, RoutingObjective
from shared.domain.strategies import STRATEGIES, OrderTraits, get_strategy
from tests.factories import FLAT_20, NOW, make_order, make_profile

BASE: dict[str, Any] = {
    "avg_execution_time_ms": 300.0,
    "response_time_ms": 10.0,
    "price_improvement_bps": 0.0,
    "slippage_bps": 0.0,
    "current_spread_bps": 2.0,
    "order_book_depth": 50_000,
    "recent_volume": 2_000_000,
    "fee_schedule": FLAT_20,
    "fill_rate_percentage": 99.0,
    "error_rate_percentage": 0.0,
    "sample_count": 500,
    "rate_limit_per_s": 10,
}


def specialist(broker_id: str, **strength: Any) -> BrokerProfile:
    return make_profile(broker_id, **{**BASE, **strength})


# For 100 shares at 2,500 (1 bp = 25 INR; brokerage 20 + GST = 23.60 INR; one standard deviation
# of the price move over T seconds = 25 sqrt(T) INR; FASTEST values a second at 2,500 INR):
SPECIALISTS = [
    # 0.8 bp better price, but 23.60 INR brokerage: the best price, not the lowest cost.
    specialist("price", price_improvement_bps=0.8),
    # no brokerage but 2 s to fill: the lowest cost, but a timing risk of 35 INR.
    specialist("cheap", fee_schedule=FeeSchedule(), avg_execution_time_ms=2_000.0),
    # 20 ms, but 1 bp worse and 23.60 INR brokerage: the fastest, at a higher cost.
    specialist("fast", avg_execution_time_ms=20.0, slippage_bps=1.0),
    # no brokerage, 100 ms, 0.2 bp worse: a little of everything, the best balance.
    specialist("balanced", fee_schedule=FeeSchedule(), avg_execution_time_ms=100.0,
               slippage_bps=0.2),
]  # fmt: skip
CHOICES = {
    RoutingObjective.BEST_PRICE: "price",
    RoutingObjective.LOWEST_COST: "cheap",
    RoutingObjective.FASTEST_EXECUTION: "fast",
    RoutingObjective.SMART_BALANCE: "balanced",
}


def chosen(objective: RoutingObjective, quantity: int = 100) -> list[str]:
    order = make_order(quantity=quantity, routing_objective=objective)
    return [a.broker_id for a in decide_route(order, SPECIALISTS, now=NOW).allocations]


@pytest.mark.parametrize(("objective", "winner"), CHOICES.items())
def test_each_objective_chooses_differently_from_the_others(
    objective: RoutingObjective, winner: str
) -> None:
    # GIVEN a 100-share market buy and four brokers, each best at one thing
    # WHEN it is routed under this objective and under each other one
    mine = chosen(objective)
    others = {other: chosen(other) for other in RoutingObjective if other is not objective}
    # THEN this objective picks its own broker, and no other objective picks the same plan
    assert mine == [winner]
    assert all(plan != mine for plan in others.values()), others


def test_fastest_fills_a_large_order_sooner_at_a_higher_cost_than_lowest_cost() -> None:
    # GIVEN an order of 40 slices' worth, where slices paced by the rate limit take time
    order = make_order(quantity=400_000)
    # WHEN
    fast = decide_route(
        order.model_copy(update={"routing_objective": RoutingObjective.FASTEST_EXECUTION}),
        SPECIALISTS,
        now=NOW,
    )
    cheap = decide_route(
        order.model_copy(update={"routing_objective": RoutingObjective.LOWEST_COST}),
        SPECIALISTS,
        now=NOW,
    )
    # THEN FASTEST spreads the slices wider and pays for it
    assert len(fast.allocations) > len(cheap.allocations)
    assert fast.expected_execution.time_ms < cheap.expected_execution.time_ms
    assert fast.expected_execution.total_cost_inr > cheap.expected_execution.total_cost_inr


def test_splitting_does_not_reduce_impact() -> None:
    # GIVEN two identical brokers with no freeze quantity, so a split cannot fill sooner
    profiles = [
        specialist(name, freeze_quantity=None, rate_limit_per_s=None) for name in ("a", "b")
    ]
    order = make_order(quantity=200_000, routing_objective=RoutingObjective.LOWEST_COST)
    # WHEN
    decision = decide_route(order, profiles, now=NOW)
    forced = decide_route(order.model_copy(update={"max_brokers": 1}), profiles, now=NOW)
    # THEN one broker takes it all: both reach the same book, so a split only adds a child
    assert [a.quantity for a in decision.allocations] == [200_000]
    assert decision.expected_execution.price == forced.expected_execution.price
    # AND the price carries the whole order's impact: Y sigma sqrt(Q / V), V the deepest view
    liquidity = 50_000 + 2_000_000 * 75
    impact = 150 * (200_000 / liquidity) ** 0.5
    assert decision.expected_execution.slippage_bps == pytest.approx(1 + impact, abs=1e-3)


def test_smart_balance_shifts_weights_by_order_traits() -> None:
    # GIVEN the strategy and three kinds of order
    strategy = get_strategy(RoutingObjective.SMART_BALANCE)
    plain = strategy.weights(OrderTraits(is_market=False, is_limit=False, size_to_depth=0.0))
    market = strategy.weights(OrderTraits(is_market=True, is_limit=False, size_to_depth=0.0))
    limit = strategy.weights(OrderTraits(is_market=False, is_limit=True, size_to_depth=0.0))
    large = strategy.weights(OrderTraits(is_market=False, is_limit=False, size_to_depth=1.0))
    # WHEN / THEN
    assert market.speed > plain.speed
    assert limit.price > plain.price
    assert large.liquidity > plain.liquidity
    for weights in (plain, market, limit, large):
        total = weights.speed + weights.price + weights.reliability + weights.liquidity
        assert total + weights.cost == pytest.approx(1.0)


def test_every_objective_has_a_strategy() -> None:
    # GIVEN / WHEN / THEN
    assert set(STRATEGIES) == set(RoutingObjective)
    for objective, strategy in STRATEGIES.items():
        assert strategy.objective is objective


def test_the_reported_money_cost_is_the_same_whatever_the_objective_valued() -> None:
    # GIVEN an order BEST_PRICE and LOWEST_COST both put on the same broker
    order = make_order(quantity=400_000)
    best_price, lowest_cost = (
        decide_route(order.model_copy(update={"routing_objective": o}), SPECIALISTS, now=NOW)
        for o in (RoutingObjective.BEST_PRICE, RoutingObjective.LOWEST_COST)
    )
    # WHEN / THEN the plan, its price, charges and money cost are the same
    assert best_price.allocations == lowest_cost.allocations
    assert (
        best_price.expected_execution.total_cost_inr
        == lowest_cost.expected_execution.total_cost_inr
    )
    assert best_price.expected_execution.charges == lowest_cost.expected_execution.charges
    # AND only what each objective minimised differs: BEST_PRICE leaves the charges out
    charges = float(lowest_cost.expected_execution.charges.total)
    gap = lowest_cost.expected_execution.objective_inr - best_price.expected_execution.objective_inr
    assert float(gap) == pytest.approx(charges * (1 - 1e-3), rel=1e-3)
