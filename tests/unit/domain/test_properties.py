"""Invariants of the engine over generated brokers and orders (docs/architecture.md §4)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.eligibility import exclusion_reason
from shared.domain.engine import EngineConfig, decide_route
from shared.domain.errors import NoEligibleBrokerError
from shared.domain.models import (
    BrokerageRule,
    BrokerProfile,
    BrokerStatus,
    FeeSchedule,
    OrderRequest,
    OrderType,
    Product,
    RoutingDecision,
    RoutingObjective,
    Side,
)
from tests.factories import FLAT_20, NOW, make_order, make_profile

FEES = [
    FeeSchedule(),
    FLAT_20,
    FeeSchedule(
        intraday=BrokerageRule(rate_pct=Decimal("0.03"), cap_inr=Decimal(20)),
        dp_charge_inr=Decimal("15.34"),
    ),
]
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CONFIG = EngineConfig()


@dataclasses.dataclass(frozen=True)
class Case:
    order: OrderRequest
    profiles: list[BrokerProfile]
    lot: int


@st.composite
def profiles_st(draw: st.DrawFn, lot: int, count: int) -> list[BrokerProfile]:
    result = []
    for i in range(count):
        values: dict[str, Any] = {
            "avg_execution_time_ms": draw(st.floats(5, 800)),
            "fill_rate_percentage": draw(st.floats(60, 100)),
            "price_improvement_bps": draw(st.floats(0, 3)),
            "slippage_bps": draw(st.floats(0, 5)),
            "current_spread_bps": draw(st.floats(0.5, 20)),
            "order_book_depth": draw(st.integers(0, 200_000)),
            "recent_volume": draw(st.integers(0, 3_000_000)),
            "response_time_ms": draw(st.floats(1, 300)),
            "error_rate_percentage": draw(st.floats(0, 10)),
            "status": draw(st.sampled_from([BrokerStatus.AVAILABLE] * 3 + list(BrokerStatus))),
            "last_updated": NOW - timedelta(seconds=draw(st.integers(0, 100_000))),
            "sample_count": draw(st.integers(0, 2_000)),
            "lot_size": lot,
            "fee_schedule": draw(st.sampled_from(FEES)),
            "freeze_quantity": draw(st.none() | st.integers(1, 200).map(lambda n: n * lot)),
            "min_order_size": draw(st.none() | st.integers(1, 20).map(lambda n: n * lot)),
            "max_order_size": draw(st.none() | st.integers(1, 5_000).map(lambda n: n * lot)),
            "volatility_bps": draw(st.floats(0, 400)),
        }
        result.append(make_profile(f"b{i}", **values))
    return result


@st.composite
def cases(draw: st.DrawFn, max_brokers: int = 5) -> Case:
    lot = draw(st.sampled_from([1, 1, 10, 50]))
    # Up to a million shares: within the router's order value limit (MAX_ORDER_VALUE_INR).
    lots = draw(st.integers(1, 20) | st.integers(1, 20_000))
    profiles = draw(profiles_st(lot, draw(st.integers(1, max_brokers))))
    order = make_order(
        quantity=lots * lot,
        side=draw(st.sampled_from(Side)),
        product=draw(st.sampled_from(Product)),
        routing_objective=draw(st.sampled_from(RoutingObjective)),
        max_brokers=draw(st.none() | st.integers(1, 5)),
        order_type=OrderType.MARKET,
    )
    return Case(order, profiles, lot)


def decide(case: Case, profiles: list[BrokerProfile] | None = None) -> RoutingDecision | None:
    try:
        return decide_route(case.order, profiles or case.profiles, now=NOW, config=CONFIG)
    except NoEligibleBrokerError:
        return None


@PROPERTY_SETTINGS
@given(cases())
def test_allocations_are_whole_lots_within_limits_on_eligible_brokers(case: Case) -> None:
    # GIVEN generated brokers and an order
    by_id = {p.broker_id: p for p in case.profiles}
    # WHEN
    decision = decide(case)
    # THEN
    if decision is None:
        return
    RoutingDecision.model_validate(decision.model_dump())
    assert sum(a.quantity for a in decision.allocations) == case.order.quantity
    assert abs(
        sum((a.allocation_percentage for a in decision.allocations), Decimal(0)) - 100
    ) <= Decimal("0.01")
    assert len(decision.allocations) <= (case.order.max_brokers or CONFIG.max_brokers)
    assert {s.broker_id for s in decision.broker_scores} == set(by_id)
    for allocation in decision.allocations:
        profile = by_id[allocation.broker_id]
        assert allocation.quantity > 0
        assert allocation.quantity % case.lot == 0
        assert profile.min_order_size is None or allocation.quantity >= profile.min_order_size
        assert profile.max_order_size is None or allocation.quantity <= profile.max_order_size
        reason = exclusion_reason(
            case.order,
            profile,
            now=NOW,
            max_profile_age_s=CONFIG.max_profile_age_s,
            recent_orders=0,
        )
        assert reason is None
    allocated = {a.broker_id for a in decision.allocations}
    assert not allocated & set(decision.fallback_broker_ids)


@PROPERTY_SETTINGS
@given(cases(), st.randoms(use_true_random=False))
def test_the_decision_is_deterministic_and_ignores_the_list_order(case: Case, rnd: Any) -> None:
    # GIVEN the same brokers in another order
    shuffled = list(case.profiles)
    rnd.shuffle(shuffled)
    # WHEN
    first, again, permuted = decide(case), decide(case), decide(case, shuffled)
    # THEN
    assert first == again == permuted


def strictly_worse(profile: BrokerProfile, broker_id: str) -> BrokerProfile:
    return profile.model_copy(
        update={
            "broker_id": broker_id,
            "avg_execution_time_ms": profile.avg_execution_time_ms + 10,
            "response_time_ms": profile.response_time_ms + 10,
            "fill_rate_percentage": max(0.0, profile.fill_rate_percentage - 1),
            "error_rate_percentage": min(100.0, profile.error_rate_percentage + 1),
            "price_improvement_bps": profile.price_improvement_bps - 0.5,
            "slippage_bps": profile.slippage_bps + 0.5,
            "current_spread_bps": profile.current_spread_bps + 1,
            "order_book_depth": profile.order_book_depth // 2,
            "recent_volume": profile.recent_volume // 2,
        }
    )


@PROPERTY_SETTINGS
@given(cases(max_brokers=4), st.integers(0, 3))
def test_adding_a_strictly_worse_broker_never_raises_the_expected_cost(
    case: Case, which: int
) -> None:
    # GIVEN a decision, and a copy of one broker that is worse in every respect
    before = decide(case)
    source = case.profiles[which % len(case.profiles)]
    worse = strictly_worse(source, "zz-worse")
    # WHEN
    after = decide(case, [*case.profiles, worse])
    # THEN
    if before is None:
        return
    assert after is not None
    assert after.expected_execution.objective_inr <= before.expected_execution.objective_inr
