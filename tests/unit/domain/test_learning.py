"""Learning with uncertainty: posterior updates, pooling, Thompson draws, bounded exploration."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import engine
from shared.domain.engine import (
    DEFAULT_CONFIG,
    EngineConfig,
    decide_route,
    evaluate_plan,
    exploration_bound,
    reference_price,
)
from shared.domain.execution import ProfileObservation
from shared.domain.learning import (
    DAY_ONE,
    DISCOUNT,
    POOL_WEIGHT,
    BatchLearner,
    Evidence,
    MeanEvidence,
    RateEvidence,
    declared_evidence,
    observe,
    posterior,
    symbol_posterior,
    thompson_draw,
    thompson_factors,
    uncertainty,
    widened,
)
from shared.domain.models import Belief, BrokerProfile, OrderType, RoutingObjective
from tests import factories

outcomes = st.lists(st.booleans(), min_size=1, max_size=200)
values = st.lists(st.floats(min_value=-50, max_value=50, allow_nan=False), min_size=1, max_size=200)
discounts = st.floats(min_value=0.5, max_value=1.0)


def fold_errors(samples: list[bool], discount: float) -> Evidence:
    evidence = Evidence()
    for clock, error in enumerate(samples, 1):
        evidence = observe(
            evidence, ProfileObservation(is_error=error), clock=clock, discount=discount
        )
    return evidence


@settings(max_examples=200, deadline=None)
@given(outcomes, discounts)
def test_rate_evidence_is_the_discounted_count_of_outcomes(
    samples: list[bool], discount: float
) -> None:
    # GIVEN a sequence of outcomes, one per round
    # WHEN they are folded in order
    evidence = fold_errors(samples, discount)
    # THEN weight and events are the discounted sums, the latest counting 1
    n = len(samples)
    weights = [discount ** (n - 1 - k) for k in range(n)]
    assert evidence.error.weight == pytest.approx(math.fsum(weights))
    assert evidence.error.events == pytest.approx(
        math.fsum(w for w, s in zip(weights, samples, strict=True) if s)
    )
    # AND the posterior mean is a proper rate, between the prior and the data since the last
    #     change of the rate (undiscounted: docs/routing-engine.md, "Error rate")
    post = posterior(DAY_ONE, evidence).error
    assert 0.0 <= post.mean <= 1.0
    steady = evidence.error_steady
    assert steady is not None
    data = steady.events / steady.weight
    low, high = sorted((DAY_ONE.error.mean, data))
    assert low - 1e-12 <= post.mean <= high + 1e-12


@settings(max_examples=200, deadline=None)
@given(values, discounts)
def test_welford_evidence_is_the_discounted_mean_and_spread(
    xs: list[float], discount: float
) -> None:
    # GIVEN observations of a continuous factor, one per round
    evidence = MeanEvidence()
    for x in xs:
        evidence = evidence.discounted(discount).add(x)
    # THEN mean and sum of squared deviations are the weighted ones
    n = len(xs)
    weights = [discount ** (n - 1 - k) for k in range(n)]
    total = math.fsum(weights)
    mean = math.fsum(w * x for w, x in zip(weights, xs, strict=True)) / total
    m2 = math.fsum(w * (x - mean) ** 2 for w, x in zip(weights, xs, strict=True))
    assert evidence.weight == pytest.approx(total)
    assert evidence.mean == pytest.approx(mean, abs=1e-9)
    assert evidence.m2 == pytest.approx(m2, rel=1e-6, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0.0, max_value=0.6), st.integers(min_value=0, max_value=2**32))
def test_learned_rate_and_slippage_within_10_pct_after_100_observations(
    rate: float, seed: int
) -> None:
    # GIVEN a broker whose true error rate is `rate` and whose slippage is 6 +- 0.5 bps
    rng = random.Random(seed)
    learner = BatchLearner(
        discount=DISCOUNT, brokers={"b": (None, 0)}, profiles={("b", "S"): (None, 0)}, clocks={}
    )
    errors = 0
    for _ in range(100):
        error = rng.random() < rate
        errors += error
        learner.learn(
            "b",
            "S",
            ProfileObservation(is_error=error, slippage_bps=None if error else rng.gauss(6.0, 0.5)),
        )
    post = learner.profile_posterior("b", "S")
    # THEN slippage is within 10 % of the truth (its noise over ~30 rounds' worth is ~2 %)
    assert abs(post.slippage.mean - 6.0) <= 0.6
    # AND the error rate is near the truth: within 4 posterior sds plus 5 points (a binomial
    # count of 100 can be 0 for a 3 % rate, where the Beta sd is near 0)
    assert abs(post.error.mean - rate) <= 4 * post.error.spread + 0.05


def test_recent_outcomes_dominate_after_a_change() -> None:
    # GIVEN 100 rounds without an error, then a broker that rejects every child
    evidence = fold_errors([False] * 100 + [True] * 20, DISCOUNT)
    # THEN after 20 rounds the posterior error rate is past 30 %
    assert posterior(DAY_ONE, evidence).error.mean > 0.3


def test_a_new_symbol_starts_from_the_broker_wide_posterior() -> None:
    # GIVEN a broker seen 60 times on other symbols with 30 % errors
    broker = fold_errors([k % 10 < 3 for k in range(60)], DISCOUNT)
    # WHEN its posterior on a symbol it never traded is asked
    post = symbol_posterior(broker, None)
    # THEN it starts at the broker-wide rate, with at most POOL_WEIGHT observations' worth
    wide = posterior(DAY_ONE, broker)
    assert post.error.mean == pytest.approx(wide.error.mean)
    assert post.error.weight == POOL_WEIGHT
    assert 0.2 < post.error.mean < 0.4
    # AND a broker nobody observed starts from the documented day-one priors
    fresh = symbol_posterior(None, None)
    assert fresh.error.mean == pytest.approx(DAY_ONE.error.mean)
    assert fresh.slippage.mean == pytest.approx(DAY_ONE.slippage.mean)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=0, max_size=50), st.lists(st.booleans(), max_size=50))
def test_pooling_shrinks_a_symbol_towards_its_broker(
    broker_samples: list[bool], own_samples: list[bool]
) -> None:
    # GIVEN a broker's evidence across symbols and a symbol's own evidence
    broker = fold_errors(broker_samples, DISCOUNT) if broker_samples else None
    own = fold_errors(own_samples, DISCOUNT) if own_samples else None
    # WHEN they are pooled
    post = symbol_posterior(broker, own).error
    wide = posterior(DAY_ONE, broker or Evidence()).error
    # THEN the estimate lies between the broker-wide mean and the symbol's own data
    own_steady = own.error_steady if own is not None else None
    if own_steady is not None:
        data = own_steady.events / own_steady.weight
        low, high = sorted((wide.mean, data))
        assert low - 1e-12 <= post.mean <= high + 1e-12
    else:
        assert post.mean == pytest.approx(wide.mean)
    # AND the broker-wide prior never counts for more than POOL_WEIGHT observations
    assert post.weight <= POOL_WEIGHT + (own_steady.weight if own_steady else 0) + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0.5, max_value=500), st.integers(min_value=0, max_value=500), discounts)
def test_staleness_only_widens_and_never_past_the_day_one_width(
    weight: float, rounds: int, discount: float
) -> None:
    # GIVEN a belief and some rounds without an update
    belief = Belief(weight=weight, sd=1.0)
    wide = widened(belief, rounds, discount)
    # THEN its weight falls and its sd grows, but not below min(weight, 2) observations' worth
    assert wide.weight <= belief.weight
    assert wide.sd >= belief.sd
    assert wide.weight >= min(weight, 2.0) - 1e-12
    assert wide.sd == pytest.approx(belief.sd * math.sqrt(belief.weight / wide.weight))


def learned_profile(broker_id: str, **figures: Any) -> BrokerProfile:
    base = factories.profile(broker_id, last_price=1295.0, **figures)
    post = symbol_posterior(None, declared_evidence(base, clock=0))
    return base.model_copy(update={"uncertainty": uncertainty(post, clock=0)})


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_a_draw_is_a_function_of_the_seed(seed: int) -> None:
    # GIVEN a profile with beliefs
    profile = learned_profile("zerodha")
    # WHEN it is drawn twice with the same seed
    one = thompson_draw(profile, random.Random(seed), clock=3, discount=DISCOUNT)
    two = thompson_draw(profile, random.Random(seed), clock=3, discount=DISCOUNT)
    # THEN the draws are equal and valid profiles
    assert one == two
    assert 0 <= one.fill_rate_percentage <= 100
    assert one.avg_execution_time_ms >= 0


ORDERS = st.sampled_from([1, 7, 40, 100, 900, 5_000, 60_000])


def brokers() -> list[BrokerProfile]:
    return [
        learned_profile("zerodha", fill_rate_percentage=90.0, slippage_bps=0.5),
        learned_profile("upstox", fill_rate_percentage=99.0, slippage_bps=2.0),
        learned_profile("dhan", fill_rate_percentage=97.0, slippage_bps=1.0),
        learned_profile("fyers", fill_rate_percentage=98.0, slippage_bps=1.5),
    ]


@settings(max_examples=120, deadline=None)
@given(ORDERS, st.integers(min_value=0, max_value=2**63 - 1))
def test_exploration_costs_at_most_the_documented_bound(quantity: int, seed: int) -> None:
    # GIVEN four brokers with beliefs and an order
    profiles = brokers()
    order = factories.order(
        quantity=quantity,
        order_type=OrderType.MARKET,
        routing_objective=RoutingObjective.LOWEST_COST,
    )
    config = EngineConfig(exploration_max_inr=50.0, exploration_max_bps=2.0)
    # WHEN it is routed greedily and with a Thompson draw
    greedy = decide_route(order, profiles, now=factories.NOW, config=config)
    explored = decide_route(order, profiles, now=factories.NOW, config=config, explore_seed=seed)
    # THEN the explored plan, valued at the posterior means, costs at most the bound more
    plan = {a.broker_id: a.quantity for a in explored.allocations}
    cost = evaluate_plan(order, profiles, plan, now=factories.NOW, config=config)
    best = evaluate_plan(
        order,
        profiles,
        {a.broker_id: a.quantity for a in greedy.allocations},
        now=factories.NOW,
        config=config,
    )
    price = float(reference_price(order, profiles))
    bound = exploration_bound(price, quantity, config)
    assert bound == pytest.approx(min(50.0, 2.0e-4 * price * quantity))
    assert cost - best <= bound + 1e-6
    # AND the same seed gives the same decision
    again = decide_route(order, profiles, now=factories.NOW, config=config, explore_seed=seed)
    assert again == explored


def test_without_a_seed_the_engine_is_greedy_and_a_zero_bound_never_explores() -> None:
    # GIVEN brokers with beliefs and an order
    profiles = brokers()
    order = factories.order(quantity=100, order_type=OrderType.MARKET)
    greedy = decide_route(order, profiles, now=factories.NOW)
    no_budget = EngineConfig(exploration_max_inr=0.0)
    # WHEN it is routed with many seeds but no exploration budget
    decisions = {
        decide_route(
            order, profiles, now=factories.NOW, config=no_budget, explore_seed=s
        ).allocations
        for s in range(30)
    }
    # THEN every decision is the greedy one
    assert decisions == {greedy.allocations}


def test_exploration_tries_an_uncertain_broker_within_the_bound() -> None:
    # GIVEN a well-known incumbent and a newcomer believed slightly worse, on day-one priors
    incumbent = learned_profile("dhan", fill_rate_percentage=97.0, sample_count=250)
    incumbent = incumbent.model_copy(
        update={
            "uncertainty": incumbent.uncertainty.model_copy(  # type: ignore[union-attr]
                update={"fill_rate": Belief(weight=500.0, sd=0.7)}
            )
        }
    )
    newcomer = learned_profile("groww", fill_rate_percentage=95.0, sample_count=0)
    order = factories.order(quantity=100, order_type=OrderType.MARKET)
    config = EngineConfig(exploration_max_inr=1_000.0, exploration_max_bps=5.0)
    # WHEN 200 orders are decided with different seeds
    chosen = [
        decide_route(
            order, [incumbent, newcomer], now=factories.NOW, config=config, explore_seed=s
        ).allocations[0]
        for s in range(200)
    ]
    # THEN the greedy choice is the incumbent, but the newcomer is tried now and then
    tried = sum(a.broker_id == "groww" for a in chosen)
    assert (
        decide_route(order, [incumbent, newcomer], now=factories.NOW).allocations[0].broker_id
        == "dhan"
    )
    assert 0 < tried < 200


def test_rate_evidence_helpers() -> None:
    # GIVEN empty evidence WHEN one event and one non-event are added THEN counts add up
    evidence = RateEvidence().add(1.0).add(0.0)
    assert (evidence.weight, evidence.events) == (2.0, 1.0)
    assert evidence.discounted(0.5) == RateEvidence(weight=1.0, events=0.5)


def test_confidence_follows_the_beliefs_weight_and_staleness() -> None:
    # GIVEN one broker whose beliefs rest on 50 observations, then on 3, then on 50 but stale
    base = learned_profile("dhan", sample_count=250)
    assert base.uncertainty is not None

    def with_weight(weight: float, clock: int = 250) -> BrokerProfile:
        u = base.uncertainty.model_copy(  # type: ignore[union-attr]
            update={
                "fill_rate": Belief(weight=weight, sd=1.0),
                "error_rate": Belief(weight=weight, sd=1.0),
                "clock": clock,
            }
        )
        return base.model_copy(update={"uncertainty": u})

    order = factories.order(quantity=100)

    def confidence(profile: BrokerProfile) -> float:
        return decide_route(order, [profile], now=factories.NOW).confidence_score

    # WHEN the same order is routed on each
    well_known, thin = confidence(with_weight(50.0)), confidence(with_weight(3.0))
    # (the symbol's clock is its sample count: a belief last updated 400 rounds ago is stale)
    stale = confidence(with_weight(50.0, clock=0).model_copy(update={"sample_count": 400}))
    fresh = confidence(with_weight(50.0, clock=400).model_copy(update={"sample_count": 400}))
    # THEN thin or stale beliefs give less confidence than well-known fresh ones
    assert thin < well_known
    assert stale < fresh


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["zerodha", "upstox", "dhan", "fyers"]),
    ORDERS,
    st.integers(min_value=0, max_value=2**63 - 1),
    st.sampled_from(list(RoutingObjective)),
    st.booleans(),
)
def test_the_explorer_costs_a_draw_as_the_engine_would_a_drawn_profile(
    broker_id: str, quantity: int, seed: int, objective: RoutingObjective, declared: bool
) -> None:
    # GIVEN a broker (with beliefs, or declared figures only) and an order
    profiles = brokers()
    if declared:
        profiles = [p.model_copy(update={"uncertainty": None}) for p in profiles]
    order = factories.order(
        quantity=quantity, order_type=OrderType.MARKET, routing_objective=objective
    )
    prepared = engine._prepare(
        order, profiles, now=factories.NOW, cfg=DEFAULT_CONFIG, counts={}, unavailable={}
    )
    [broker] = [b for b in prepared.derived if b.profile.broker_id == broker_id]
    # WHEN one draw is costed by the explorer's shortcut and by deriving the drawn profile
    drawn = thompson_factors(broker.profile, random.Random(seed), clock=7, discount=DISCOUNT)
    profile = thompson_draw(broker.profile, random.Random(seed), clock=7, discount=DISCOUNT)
    shortcut = engine._drawn_model(broker, drawn, prepared.terms)
    full = engine._derive(
        profile, prepared.terms, rank=broker.model.rank, capacity=broker.model.hi
    ).model
    # THEN both are the same draw and cost the order the same
    assert profile.fill_rate_percentage == drawn.fill_rate_percentage
    assert shortcut.cost(quantity) == pytest.approx(full.cost(quantity), rel=1e-9, abs=1e-9)
