"""The routing engine: the specification's cases, eligibility, errors, slicing, confidence."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.domain.engine import EngineConfig, decide_route
from shared.domain.errors import InvalidOrderError, NoEligibleBrokerError
from shared.domain.models import (
    BrokerStatus,
    OrderType,
    Product,
    RoutingDecision,
    Side,
)
from tests.factories import NOW, QUOTE, make_order, make_profile, three_brokers


def assert_consistent(decision: RoutingDecision, quantity: int) -> None:
    # Round-trip through validation: the engine's output must satisfy every model constraint.
    RoutingDecision.model_validate(decision.model_dump())
    assert sum(a.quantity for a in decision.allocations) == quantity
    assert abs(
        sum((a.allocation_percentage for a in decision.allocations), Decimal(0)) - 100
    ) <= Decimal("0.01")
    assert [a.priority for a in decision.allocations] == list(
        range(1, len(decision.allocations) + 1)
    )


def test_a_normal_order_gets_one_allocation_and_confidence_above_0_7() -> None:
    # GIVEN a 100-share market buy and three healthy brokers
    order = make_order(quantity=100)
    # WHEN
    decision = decide_route(order, three_brokers(), now=NOW)
    # THEN
    assert len(decision.allocations) == 1
    assert decision.allocations[0].allocation_percentage == Decimal("100.00")
    assert decision.confidence_score > 0.7
    assert_consistent(decision, 100)
    assert len(decision.fallback_broker_ids) == 2


def test_a_million_shares_are_split_over_several_brokers() -> None:
    # GIVEN an order of 1,000,000 shares
    order = make_order(quantity=1_000_000)
    # WHEN
    decision = decide_route(order, three_brokers(), now=NOW)
    # THEN
    assert len(decision.allocations) > 1
    assert_consistent(decision, 1_000_000)
    # freeze quantity 100,000: every allocation is sliced into children of at most 100,000
    for allocation in decision.allocations:
        assert allocation.slices == -(-allocation.quantity // 100_000)


def test_the_split_equalises_marginal_cost_between_identical_brokers() -> None:
    # GIVEN two identical brokers and an order large enough to split
    profiles = [make_profile("alpha"), make_profile("beta")]
    # WHEN
    decision = decide_route(make_order(quantity=400_000), profiles, now=NOW)
    # THEN water-filling gives them equal halves
    assert sorted(a.quantity for a in decision.allocations) == [200_000, 200_000]


def test_every_excluded_broker_carries_its_reason() -> None:
    # GIVEN brokers failing each eligibility rule, and one good broker
    profiles = [
        make_profile("offline", status=BrokerStatus.OFFLINE),
        make_profile("maint", status=BrokerStatus.MAINTENANCE),
        make_profile("error", status=BrokerStatus.ERROR),
        make_profile("notype", supported_order_types=frozenset({OrderType.LIMIT})),
        make_profile("toosmall", min_order_size=1_000),
        make_profile("stale", market_updated_at=NOW - timedelta(hours=2)),
        make_profile("limited", rate_limit_per_s=5),
        make_profile("good"),
    ]
    config = EngineConfig(max_profile_age_s=3600, max_market_age_s=900)
    # WHEN
    decision = decide_route(
        make_order(quantity=100),
        profiles,
        now=NOW,
        config=config,
        recent_order_counts={"limited": 5},
    )
    # THEN
    reasons = {s.broker_id: s.exclusion_reason for s in decision.broker_scores}
    assert len(reasons) == len(profiles)
    assert reasons["good"] is None
    assert reasons["offline"] == "broker is OFFLINE"
    assert reasons["maint"] == "broker is MAINTENANCE"
    assert reasons["error"] == "broker is ERROR"
    assert reasons["notype"] == "order type MARKET not supported"
    assert "below the broker's minimum of 1000" in str(reasons["toosmall"])
    assert str(reasons["stale"]).startswith("STALE_MARKET_DATA: market data taken 7200 s ago")
    assert "rate limit exhausted: 5 of 5" in str(reasons["limited"])
    assert [a.broker_id for a in decision.allocations] == ["good"]
    assert decision.fallback_broker_ids == ()


def test_no_eligible_broker_raises_with_every_reason() -> None:
    # GIVEN only unusable brokers
    profiles = [
        make_profile("a", status=BrokerStatus.OFFLINE),
        make_profile("b", supported_order_types=frozenset({OrderType.LIMIT})),
    ]
    # WHEN
    with pytest.raises(NoEligibleBrokerError) as raised:
        decide_route(make_order(), profiles, now=NOW)
    # THEN
    assert raised.value.reasons == {
        "a": "broker is OFFLINE",
        "b": "order type MARKET not supported",
    }


def test_quantity_not_in_whole_lots_names_the_field() -> None:
    # GIVEN brokers trading in lots of 50
    profiles = [make_profile("a", lot_size=50), make_profile("b", lot_size=50)]
    # WHEN
    with pytest.raises(InvalidOrderError) as raised:
        decide_route(make_order(quantity=120), profiles, now=NOW)
    # THEN
    assert raised.value.field == "quantity"


def test_an_order_without_any_reference_price_names_the_quote() -> None:
    # GIVEN a market order without a quote and profiles without a last price
    order = make_order(quote=None)
    # WHEN
    with pytest.raises(InvalidOrderError) as raised:
        decide_route(order, three_brokers(), now=NOW)
    # THEN
    assert raised.value.field == "quote"


def test_last_price_of_the_profiles_is_the_fallback_reference() -> None:
    # GIVEN no quote, but profiles that saw a last price
    profiles = [make_profile("a", last_price=100.0), make_profile("b", last_price=102.0)]
    # WHEN
    decision = decide_route(make_order(quote=None), profiles, now=NOW)
    # THEN the lower median (100) is the reference: the expected price is just above it
    assert Decimal(100) < decision.expected_execution.price < Decimal(101)


def test_a_limit_buy_never_expects_to_pay_above_its_limit() -> None:
    # GIVEN a limit buy at the bid, far below mid + spread + impact
    order = make_order(order_type=OrderType.LIMIT, limit_price=Decimal("2499.50"), quantity=500_000)
    # WHEN
    decision = decide_route(order, three_brokers(), now=NOW)
    # THEN
    assert all(a.expected_execution_price <= Decimal("2499.50") for a in decision.allocations)


def test_max_brokers_and_max_order_size_are_respected() -> None:
    # GIVEN brokers that take at most 300,000 each and an order allowing two brokers
    profiles = [make_profile(b, max_order_size=300_000) for b in ("a", "b", "c", "d")]
    order = make_order(quantity=600_000, max_brokers=2)
    # WHEN
    decision = decide_route(order, profiles, now=NOW)
    # THEN
    assert [a.quantity for a in decision.allocations] == [300_000, 300_000]
    # AND a third broker would be needed for more: no combination of two fills it
    with pytest.raises(NoEligibleBrokerError):
        decide_route(make_order(quantity=700_000, max_brokers=2), profiles, now=NOW)


def test_a_busy_broker_is_penalised_not_excluded() -> None:
    # GIVEN two identical brokers, one BUSY
    profiles = [make_profile("a", status=BrokerStatus.BUSY), make_profile("b")]
    # WHEN
    decision = decide_route(make_order(quantity=100), profiles, now=NOW)
    # THEN
    scores = {s.broker_id: s for s in decision.broker_scores}
    assert scores["a"].exclusion_reason is None
    assert scores["a"].reliability_score < scores["b"].reliability_score
    assert [a.broker_id for a in decision.allocations] == ["b"]
    assert decision.fallback_broker_ids == ("a",)


def test_rate_limit_caps_what_a_broker_can_take_this_second() -> None:
    # GIVEN a broker with room for one more order of at most 100,000 (its freeze quantity)
    profiles = [make_profile("a", rate_limit_per_s=10), make_profile("b")]
    # WHEN
    decision = decide_route(
        make_order(quantity=400_000), profiles, now=NOW, recent_order_counts={"a": 9}
    )
    # THEN
    quantities = {a.broker_id: a.quantity for a in decision.allocations}
    assert quantities["a"] <= 100_000
    assert sum(quantities.values()) == 400_000


def test_expected_execution_itemises_charges_and_takes_the_slowest_child() -> None:
    # GIVEN an intraday sell large enough to split over brokers of different latency
    order = make_order(quantity=600_000, side=Side.SELL, product=Product.MIS)
    # WHEN
    decision = decide_route(order, three_brokers(), now=NOW)
    # THEN
    execution = decision.expected_execution
    assert len(decision.allocations) > 1
    assert execution.charges.stt > 0
    assert execution.charges.stamp_duty == 0
    assert execution.charges.brokerage > 0
    # the slowest child: its first slice, a re-route of what does not fill, then its other
    # slices paced by the rate limit (docs/routing-engine.md, "Time to fill")
    by_id = {p.broker_id: p for p in three_brokers()}

    def child_ms(broker_id: str, slices: int) -> float:
        p = by_id[broker_id]
        miss = 1 - p.fill_rate_percentage / 100
        first = p.avg_execution_time_ms + miss * (p.response_time_ms + p.avg_execution_time_ms)
        assert p.rate_limit_per_s is not None
        return first + (slices - 1) * 1000 / p.rate_limit_per_s

    slowest = max(child_ms(a.broker_id, a.slices) for a in decision.allocations)
    assert execution.time_ms == pytest.approx(slowest)
    assert execution.price < Decimal("2500.00")  # a sell expects below the mid
    assert execution.slippage_bps > 0  # positive slippage = worse for the trader
    assert 0 < execution.fill_probability <= 1
    assert execution.total_cost_inr >= execution.charges.total


def test_a_reject_lowers_the_fill_probability_once() -> None:
    # GIVEN a broker whose finished children filled 80 % on average, a rejected child counting
    # 0 %, and 20 % of them rejected
    profile = make_profile("zerodha", fill_rate_percentage=80.0, error_rate_percentage=20.0)
    # WHEN
    decision = decide_route(make_order(quantity=100), [profile], now=NOW)
    # THEN the probability that a share fills is the fill rate, not 0.8 x (1 - 0.2)
    assert decision.expected_execution.fill_probability == pytest.approx(0.8)


def test_confidence_falls_with_stale_thin_data() -> None:
    # GIVEN the same broker fresh with many samples, and old with few
    fresh = [make_profile("a", sample_count=1_000)]
    thin = [make_profile("a", sample_count=3, last_updated=NOW - timedelta(hours=20))]
    # WHEN
    good = decide_route(make_order(), fresh, now=NOW).confidence_score
    poor = decide_route(make_order(), thin, now=NOW).confidence_score
    # THEN
    assert 0 <= poor < 0.3 < good <= 1


def test_duplicate_broker_ids_are_a_programming_error() -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="unique"):
        decide_route(make_order(), [make_profile("a"), make_profile("a")], now=NOW)


def test_on_the_wire_the_decision_is_camel_case() -> None:
    # GIVEN
    decision = decide_route(make_order(), three_brokers(), now=NOW)
    # WHEN
    wire = decision.model_dump(mode="json", by_alias=True)
    # THEN
    assert {"confidenceScore", "expectedExecution", "brokerScores"} <= wire.keys()
    assert "allocationPercentage" in wire["allocations"][0]


def test_a_huge_sell_against_thin_liquidity_expects_a_positive_price_within_the_band() -> None:
    # GIVEN a market sell of far more than the brokers' books and volume could absorb
    thin = [
        make_profile(b, order_book_depth=1, recent_volume=0, volatility_bps=900.0)
        for b in ("zerodha", "upstox")
    ]
    order = make_order(side=Side.SELL, quantity=500_000)
    # WHEN it is routed
    decision = decide_route(order, thin, now=NOW)
    # THEN every expected price is positive and at most NSE's widest band (20 %) below the
    #      reference, so the charges can be computed and the decision stored
    reference = QUOTE.mid
    assert reference is not None
    for allocation in decision.allocations:
        assert allocation.expected_execution_price > 0
        assert allocation.expected_execution_price >= reference * Decimal("0.8") - Decimal("0.01")
    assert decision.expected_execution.slippage_bps <= 2_000 + 1e-6
