"""The subset search orders subsets by a closed-form key; it must take exactly the same subsets."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain import allocation
from shared.domain.allocation import BrokerCostModel, optimise

GST = 1.18


@st.composite
def cost_models(draw: st.DrawFn) -> tuple[list[BrokerCostModel], int, int]:
    """Brokers as the engine builds them, impact from the 1e-9 floor up to a thin book."""
    lot = draw(st.sampled_from([1, 1, 10, 50]))
    total = lot * draw(st.integers(1, 20) | st.integers(1, 40_000) | st.integers(1, 200_000))
    floor = lot * max(1, math.ceil(total * draw(st.sampled_from([0.0, 0.05, 0.2])) / lot))
    # Identical market terms make near ties, where a key above its bound would show.
    alike = draw(st.booleans())
    models = []
    for rank in range(draw(st.integers(1, 7))):
        if rank == 0 or not alike:
            price = draw(st.floats(50, 5_000))
            volatility = draw(st.sampled_from([0.0, 150.0]) | st.floats(20, 400))
            liquidity = draw(st.floats(1e3, 3e8))
            impact = max(price * volatility * 1e-4 / math.sqrt(liquidity), 1e-9)
            linear = price * draw(st.floats(-5e-4, 3e-3))
        minimum, cap = draw(st.sampled_from([(0.0, None), (20.0, 20.0), (0.0, 20.0)]))
        rate = draw(st.sampled_from([0.0, 3e-4]))
        fixed = draw(st.sampled_from([0.0, 15.34]))
        lo_single = lot * draw(st.integers(1, 3))
        models.append(
            BrokerCostModel(
                broker_id=f"b{rank}",
                rank=rank,
                linear=linear,
                lb_linear=linear + (rate * price * GST if cap is None else 0.0),
                impact=impact,
                fixed=fixed,
                lb_fixed=fixed + 10.0 + (0.0 if cap is None else min(minimum, cap)) * GST,
                child_cost=10.0,
                rate=rate,
                minimum=minimum,
                cap=cap,
                gst_factor=GST,
                price=price,
                slice_shares=draw(st.sampled_from([None, 100_000 // lot * lot, 7 * lot])),
                lo_single=lo_single,
                lo_split=max(lo_single, floor),
                hi=min(total, lot * draw(st.integers(1, 10**6))) // lot * lot,
            )
        )
    return models, total, lot


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cost_models(), st.integers(1, 5), st.sampled_from([2, 4, 16]))
def test_keyed_search_finds_the_optimum_and_runner_up_of_solving_every_subset(
    case: tuple[list[BrokerCostModel], int, int], max_brokers: int, max_candidates: int
) -> None:
    # GIVEN brokers and an order
    models, total, lot = case
    # WHEN the search orders subsets by their keys, and when it solves every subset first
    keyed = optimise(models, total, lot, max_brokers=max_brokers, max_candidates=max_candidates)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(allocation, "_CONDITION", -1.0)
        exhaustive = optimise(
            models, total, lot, max_brokers=max_brokers, max_candidates=max_candidates
        )
    # THEN the same plans were evaluated: same best plan, runner-up and count
    assert keyed == exhaustive
