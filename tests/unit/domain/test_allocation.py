"""The splitter against exhaustive search over every whole-lot plan of small orders.

Cost models are drawn as the engine builds them (slices under a freeze quantity, brokerage
minimums and caps, per-child costs, time values that grow with slices, lot sizes, per-broker
minimums, maximums and capacities, ``max_brokers``): the splitter must find the exact optimum.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.domain import allocation
from shared.domain.allocation import BrokerCostModel, optimise

GST = 1.18
BROKERAGE = [(0.0, 0.0, None), (0.0, 20.0, 20.0), (3e-4, 0.0, 20.0), (5e-4, 20.0, None)]


def model(
    rank: int,
    *,
    lot: int,
    total: int,
    floor: int,
    linear: float,
    brokerage: tuple[float, float, float | None],
    slice_lots: int | None,
    lo_lots: int,
    hi_lots: int,
    time_pace: float = 0.1,
    time_sqrt: float = 0.0,
    price: float = 2_500.0,
) -> BrokerCostModel:
    rate, minimum, cap = brokerage
    lo_single = lot * lo_lots
    return BrokerCostModel(
        broker_id=f"b{rank}",
        rank=rank,
        linear=linear,
        time_base=0.1,
        time_pace=time_pace,
        time_linear=0.0,
        time_sqrt=time_sqrt,
        fixed=0.0,
        child_cost=10.0,
        rate=rate,
        minimum=minimum,
        cap=cap,
        charge_factor=GST,
        price=price,
        slice_shares=None if slice_lots is None else slice_lots * lot,
        lo_single=lo_single,
        lo_split=max(lo_single, floor),
        hi=min(total, lot * hi_lots),
    )


@st.composite
def problems(draw: st.DrawFn) -> tuple[list[BrokerCostModel], int, int, int]:
    """Up to 4 brokers and up to 14 lots: small enough to enumerate every plan."""
    lot = draw(st.sampled_from([1, 25, 50]))
    lots = draw(st.integers(1, 14))
    total = lot * lots
    floor = lot * draw(st.integers(1, 3))
    price = draw(st.sampled_from([20.0, 700.0, 2_500.0]))
    models = [
        model(
            rank,
            lot=lot,
            total=total,
            floor=floor,
            price=price,
            linear=price * draw(st.floats(0.0, 2e-3)),
            brokerage=draw(st.sampled_from(BROKERAGE)),
            slice_lots=draw(st.sampled_from([None, 1, 2, 3, 5])),
            lo_lots=draw(st.integers(1, 2)),
            hi_lots=draw(st.integers(1, 16)),
            time_pace=draw(st.sampled_from([0.0, 0.1, 1.0])),
            time_sqrt=price * draw(st.sampled_from([0.0, 1e-4, 5e-3])),
        )
        for rank in range(draw(st.integers(1, 4)))
    ]
    return models, total, lot, draw(st.integers(1, 4))


def exhaustive(models: list[BrokerCostModel], total: int, lot: int, max_brokers: int) -> float:
    """The cheapest plan by trying every vector of whole lots."""
    lots = total // lot
    best = math.inf
    for split in itertools.product(range(lots + 1), repeat=len(models)):
        used = [(m, n * lot) for m, n in zip(models, split, strict=True) if n]
        if sum(split) != lots or not 1 <= len(used) <= max_brokers:
            continue
        low = (lambda m: m.lo_single) if len(used) == 1 else (lambda m: m.lo_split)
        if all(low(m) <= q <= m.hi for m, q in used):
            best = min(best, math.fsum(m.cost(q) for m, q in used))
    return best


TWO_BROKERS_ONE_SLICE_TOO_MANY = (
    [
        model(0, lot=1, total=6, floor=1, linear=1.0, brokerage=BROKERAGE[1], slice_lots=3,
              lo_lots=1, hi_lots=16),
        model(1, lot=1, total=6, floor=1, linear=1.1, brokerage=BROKERAGE[1], slice_lots=3,
              lo_lots=1, hi_lots=16),
    ],
    6,
    1,
    2,
)  # fmt: skip
"""Two flat-fee brokers with slices of 3: any plan but 3 + 3 or 6 pays a needless slice."""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
@example(TWO_BROKERS_ONE_SLICE_TOO_MANY)
def test_the_splitter_finds_the_exact_optimum(
    problem: tuple[list[BrokerCostModel], int, int, int],
) -> None:
    # GIVEN brokers with slices, minimums, caps, bounds, and an order of a few lots
    models, total, lot, max_brokers = problem
    # WHEN
    optimum = optimise(models, total, lot, max_brokers=max_brokers)
    exact = exhaustive(models, total, lot, max_brokers)
    # THEN it finds a plan exactly when one exists, and no plan is cheaper
    if optimum is None:
        assert exact == math.inf
        return
    assert optimum.best.cost <= exact * (1 + 1e-12) + 1e-9
    by_rank = {m.rank: m for m in models}
    pairs = optimum.best.quantities
    assert sum(q for _, q in pairs) == total
    assert len(pairs) <= max_brokers
    assert math.isclose(
        math.fsum(by_rank[r].cost(q) for r, q in pairs), optimum.best.cost, rel_tol=1e-12
    )


def test_the_runner_up_does_without_the_best_plans_main_broker() -> None:
    # GIVEN two brokers, one cheaper per share
    models, total, lot, _ = TWO_BROKERS_ONE_SLICE_TOO_MANY
    # WHEN only one broker is allowed
    optimum = optimise(models, total, lot, max_brokers=1)
    # THEN the best plan uses the cheaper one, and the runner-up is the other broker alone
    assert optimum is not None
    assert optimum.best.quantities == ((0, 6),)
    assert optimum.runner_up_cost == models[1].cost(6)


def test_a_broker_whose_capacity_is_too_small_alone_is_used_in_a_split() -> None:
    # GIVEN two brokers that can each take only 4 of 6 lots
    models = [
        model(r, lot=10, total=60, floor=10, linear=1.0 + r / 10, brokerage=BROKERAGE[0],
              slice_lots=None, lo_lots=1, hi_lots=4)
        for r in range(2)
    ]  # fmt: skip
    # WHEN
    optimum = optimise(models, 60, 10, max_brokers=2)
    # THEN the cheaper takes all it can
    assert optimum is not None
    assert optimum.best.quantities == ((0, 40), (1, 20))
    assert optimise(models, 60, 10, max_brokers=1) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_past_its_budget_the_splitter_stays_within_its_tolerance(
    problem: tuple[list[BrokerCostModel], int, int, int],
) -> None:
    # GIVEN a search whose budget is spent before it starts
    models, total, lot, max_brokers = problem
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(allocation, "BUDGET", -1)
        # WHEN
        optimum = optimise(models, total, lot, max_brokers=max_brokers)
    exact = exhaustive(models, total, lot, max_brokers)
    # THEN it says so, and its plan is within 0.1 % of the optimum
    if optimum is None:
        assert exact == math.inf
        return
    assert optimum.gap_bound == allocation.TOLERANCE
    assert optimum.best.cost <= exact + allocation.TOLERANCE * abs(exact) + 1e-9


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_past_its_cap_the_splitter_still_returns_a_feasible_plan_and_a_true_bound(
    problem: tuple[list[BrokerCostModel], int, int, int],
) -> None:
    # GIVEN a search capped from the start (a beam of one partial plan a step)
    models, total, lot, max_brokers = problem
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(allocation, "CAP", -1)
        patch.setattr(allocation, "BEAM", 1)
        # WHEN
        optimum = optimise(models, total, lot, max_brokers=max_brokers)
    exact = exhaustive(models, total, lot, max_brokers)
    # THEN the plan is feasible and no better than the optimum, and the proven gap is true
    if optimum is None:
        return  # a beam may miss every split; the exact search is what proves none exists
    assert sum(q for _, q in optimum.best.quantities) == total
    assert optimum.best.cost >= exact - 1e-9 * abs(exact)
    assert optimum.best.cost - exact <= optimum.gap_bound * abs(exact) + 1e-6
