"""Each objective picks the broker that is best on its factor; SMART_BALANCE reads the order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.domain.engine import decide_route
from shared.domain.models import BrokerProfile, FeeSchedule, OrderType, RoutingObjective
from shared.domain.strategies import STRATEGIES, OrderTraits, get_strategy
from tests.unit.domain.conftest import FLAT_20, NOW, make_order, make_profile

BASE: dict[str, Any] = {
    "avg_execution_time_ms": 300.0,
    "response_time_ms": 50.0,
    "price_improvement_bps": 0.0,
    "slippage_bps": 0.0,
    "current_spread_bps": 2.0,
    "order_book_depth": 5_000,
    "recent_volume": 200_000,
    "fee_schedule": FLAT_20,
    "fill_rate_percentage": 99.0,
    "error_rate_percentage": 0.0,
    "sample_count": 500,
}


def specialist(broker_id: str, **strength: Any) -> BrokerProfile:
    return make_profile(broker_id, **{**BASE, **strength})


SPECIALISTS = [
    specialist("fast", avg_execution_time_ms=20.0, response_time_ms=10.0),
    specialist("price", price_improvement_bps=2.0),
    specialist("cheap", fee_schedule=FeeSchedule()),
    specialist("deep", order_book_depth=50_000, recent_volume=2_000_000),
]


@pytest.mark.parametrize(
    ("objective", "winner"),
    [
        (RoutingObjective.FASTEST_EXECUTION, "fast"),
        (RoutingObjective.BEST_PRICE, "price"),
        (RoutingObjective.LOWEST_COST, "cheap"),
    ],
)
def test_each_objective_picks_the_broker_best_on_its_factor(
    objective: RoutingObjective, winner: str
) -> None:
    # GIVEN four brokers alike except for one strength each, and a small order
    order = make_order(quantity=100, routing_objective=objective)
    # WHEN
    decision = decide_route(order, SPECIALISTS, now=NOW)
    # THEN
    assert [a.broker_id for a in decision.allocations] == [winner]
    best_score = max(decision.broker_scores, key=lambda s: s.total_score)
    assert best_score.broker_id == winner


def test_smart_balance_gives_a_large_order_mostly_to_the_deepest_broker() -> None:
    # GIVEN an order 40 times the typical book depth
    order = make_order(quantity=200_000, routing_objective=RoutingObjective.SMART_BALANCE)
    # WHEN
    decision = decide_route(order, SPECIALISTS, now=NOW)
    # THEN
    largest = max(decision.allocations, key=lambda a: a.quantity)
    assert largest.broker_id == "deep"


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


def test_a_limit_order_under_smart_balance_weighs_price() -> None:
    # GIVEN a small limit order
    order = make_order(
        quantity=100,
        order_type=OrderType.LIMIT,
        limit_price=Decimal("2501.00"),
        routing_objective=RoutingObjective.SMART_BALANCE,
    )
    # WHEN
    decision = decide_route(order, SPECIALISTS, now=NOW)
    # THEN the price specialist wins
    assert [a.broker_id for a in decision.allocations] == ["price"]
