"""The engine's split against a brute-force search over every whole-lot split of small orders."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.engine import EngineConfig, decide_route, evaluate_plan
from shared.domain.errors import NoEligibleBrokerError
from shared.domain.models import (
    BrokerageRule,
    BrokerProfile,
    FeeSchedule,
    Product,
    RoutingObjective,
    Side,
)
from tests.factories import FLAT_20, NOW, make_order, make_profile

LOT = 5_000
CONFIG = EngineConfig(min_child_pct=0.0, min_child_lots=1, max_brokers=4)
FEES = [
    FeeSchedule(),
    FLAT_20,
    FeeSchedule(intraday=BrokerageRule(rate_pct=Decimal("0.03"), cap_inr=Decimal(20))),
]


@st.composite
def small_cases(draw: st.DrawFn) -> tuple[int, list[BrokerProfile], Product, RoutingObjective]:
    lots = draw(st.integers(1, 20))
    profiles = [
        make_profile(
            f"b{i}",
            lot_size=LOT,
            freeze_quantity=draw(st.sampled_from([None, 2 * LOT, 7 * LOT])),
            max_order_size=draw(st.sampled_from([None, 8 * LOT, 15 * LOT])),
            order_book_depth=draw(st.integers(1_000, 100_000)),
            recent_volume=draw(st.integers(1_000, 400_000)),
            slippage_bps=draw(st.floats(0, 4)),
            current_spread_bps=draw(st.floats(1, 10)),
            fill_rate_percentage=draw(st.floats(80, 100)),
            volatility_bps=draw(st.floats(50, 300)),
            fee_schedule=draw(st.sampled_from(FEES)),
            last_updated=NOW - timedelta(minutes=i),
            rate_limit_per_s=None,
        )
        for i in range(draw(st.integers(1, 4)))
    ]
    return lots, profiles, draw(st.sampled_from(Product)), draw(st.sampled_from(RoutingObjective))


def brute_force(
    lots: int, profiles: list[BrokerProfile], cost: dict[tuple[str, int], float]
) -> tuple[float, float]:
    """Cheapest plan over every integer split, and the cheapest single-broker plan."""
    best = single = float("inf")
    ids = [p.broker_id for p in profiles]
    limits = {p.broker_id: (p.max_order_size or lots * LOT) // LOT for p in profiles}
    for split in itertools.product(range(lots + 1), repeat=len(ids)):
        if sum(split) != lots or any(n > limits[b] for b, n in zip(ids, split, strict=True)):
            continue
        total = sum(cost[(b, n)] for b, n in zip(ids, split, strict=True) if n)
        best = min(best, total)
        if sum(1 for n in split if n) == 1:
            single = min(single, total)
    return best, single


@settings(max_examples=60, deadline=None)
@given(small_cases())
def test_the_split_is_the_brute_force_optimum_for_every_objective(
    case: tuple[int, list[BrokerProfile], Product, RoutingObjective],
) -> None:
    # GIVEN a small order (<= 20 lots), up to four brokers, any objective
    lots, profiles, product, objective = case
    order = make_order(
        quantity=lots * LOT, product=product, side=Side.BUY, routing_objective=objective
    )
    cost = {
        (p.broker_id, n): evaluate_plan(
            order, profiles, {p.broker_id: n * LOT}, now=NOW, config=CONFIG
        )
        for p in profiles
        for n in range(1, lots + 1)
    }
    best, single = brute_force(lots, profiles, cost)
    # WHEN
    try:
        decision = decide_route(order, profiles, now=NOW, config=CONFIG)
    except NoEligibleBrokerError:
        # THEN only when no split at all can fill the order
        assert best == float("inf")
        return
    # THEN
    plan = {a.broker_id: a.quantity for a in decision.allocations}
    engine = evaluate_plan(order, profiles, plan, now=NOW, config=CONFIG)
    assert engine <= best + 1e-9 * abs(best)
    assert engine <= single + 1e-9 * abs(single)
    assert float(decision.expected_execution.objective_inr) == round(engine, 2)
