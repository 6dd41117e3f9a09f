"""Execution metrics, quality score and profile observations, checked against hand computations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.errors import InvalidExecutionReportError
from shared.domain.execution import (
    ExecutionReport,
    ExecutionStatus,
    ProfileObservation,
    QualityWeights,
    compute_execution_metrics,
    profile_observation,
    quality_score,
)
from shared.domain.models import Exchange, Quote, Side
from shared.domain.orders import ChildOrderStatus, placement_observation

ORDER_TIME = datetime(2026, 11, 24, 3, 45, 0, tzinfo=UTC)  # 09:15:00 IST


def report(**overrides: Any) -> ExecutionReport:
    fields: dict[str, Any] = {
        "broker_id": "zerodha",
        "broker_order_id": "B-1",
        "status": ExecutionStatus.FILLED,
        "quantity": 100,
        "filled_quantity": 100,
        "average_price": Decimal("2501.00"),
        "symbol": "RELIANCE",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "event_time": ORDER_TIME + timedelta(milliseconds=250),
    }
    fields.update(overrides)
    return ExecutionReport(**fields)


def test_buy_fill_metrics_match_hand_computation() -> None:
    # GIVEN a buy of 100 expected at 2500.00, filled at 2501.00 after 250 ms,
    #       arrival quote 2499.50 / 2500.50
    r = report()
    quote = Quote(bid=Decimal("2499.50"), ask=Decimal("2500.50"))
    # WHEN metrics are computed
    m = compute_execution_metrics(
        r, order_time=ORDER_TIME, expected_price=Decimal("2500.00"), arrival_quote=quote
    )
    # THEN latency = 250 ms
    assert m.latency_ms == 250
    # AND against the far touch (ask 2500.50): d = 1e4 * (2501 - 2500.50) / 2500.50
    #     = +1.99960008 bps outside the quote: slippage 1.9996, no price improvement
    assert m.slippage_bps == Decimal("1.9996")
    assert m.price_improvement_bps == Decimal(0)
    assert m.fill_rate == Decimal("100.00")
    # AND the router's promise is recorded for audit: 1e4 * (2501 - 2500) / 2500 = +4 bps
    assert m.market_conditions["vsExpectedBps"] == 4.0
    # AND quality = 0.4*1 + 0.3/(1+1.9996/25) + 0.2*logistic(0) + 0.1/(1+0.25)
    #     = 0.4 + 0.277782 + 0.1 + 0.08 = 0.857782 -> 0.858
    assert m.execution_quality_score == Decimal("0.858")
    assert m.market_conditions["referenceSource"] == "far_touch"
    assert m.market_conditions["referencePrice"] == "2500.50"
    assert m.market_conditions["spreadBps"] == pytest.approx(4.0)


def test_sell_fill_metrics_match_hand_computation() -> None:
    # GIVEN a sell of 50 expected at 1000.00, filled at 999.00 after 1.2 s,
    #       arrival quote 998.50 / 999.50
    r = report(
        side=Side.SELL,
        quantity=50,
        filled_quantity=50,
        average_price=Decimal("999.00"),
        event_time=ORDER_TIME + timedelta(milliseconds=1200),
    )
    quote = Quote(bid=Decimal("998.50"), ask=Decimal("999.50"))
    # WHEN metrics are computed
    m = compute_execution_metrics(
        r, order_time=ORDER_TIME, expected_price=Decimal("1000.00"), arrival_quote=quote
    )
    # THEN against the far touch (bid 998.50): d = -1e4 * (999 - 998.50) / 998.50 = -5.00751:
    #      sold inside the quote, so price improvement 5.0075 and no slippage
    assert m.price_improvement_bps == Decimal("5.0075")
    assert m.slippage_bps == Decimal(0)
    # AND the 10 bps below the router's expected price is audit only
    assert m.market_conditions["vsExpectedBps"] == 10.0
    assert m.latency_ms == 1200
    # AND quality = 0.4 + 0.3*1 + 0.2*logistic(0.500751) + 0.1/(1+1.2)
    #     = 0.4 + 0.3 + 0.124527 + 0.045455 = 0.869982 -> 0.870
    assert m.execution_quality_score == Decimal("0.870")


def test_price_metrics_ignore_the_routers_expected_price() -> None:
    # GIVEN the same fill, 6 bps through the ask, against three different expected prices
    quote = Quote(bid=Decimal("999.50"), ask=Decimal("1000.00"))
    fill = report(average_price=Decimal("1000.60"))
    # WHEN metrics are computed for each
    slippages = {
        compute_execution_metrics(
            fill, order_time=ORDER_TIME, expected_price=expected, arrival_quote=quote
        ).slippage_bps
        for expected in (Decimal("1000.00"), Decimal("1000.30"), Decimal("1000.60"))
    }
    # THEN slippage is 6 bps every time: a router that already expects slippage cannot learn
    #      a smaller one by measuring against its own expectation
    assert slippages == {Decimal("6.0000")}


def test_partial_fill_without_quote_has_no_price_metrics() -> None:
    # GIVEN 50 of 200 bought at 100.05 against 100.00 expected, no arrival quote, 500 ms
    r = report(
        status=ExecutionStatus.PARTIALLY_FILLED,
        quantity=200,
        filled_quantity=50,
        average_price=Decimal("100.05"),
        event_time=ORDER_TIME + timedelta(milliseconds=500),
    )
    # WHEN metrics are computed
    m = compute_execution_metrics(r, order_time=ORDER_TIME, expected_price=Decimal("100.00"))
    # THEN fill rate = 25 %, and without a market reference neither slippage nor improvement
    assert m.fill_rate == Decimal("25.00")
    assert m.slippage_bps is None
    assert m.price_improvement_bps is None
    assert m.market_conditions["vsExpectedBps"] == 5.0
    # AND quality = (0.4*0.25 + 0.1/(1+0.5)) / (0.4+0.1) = 0.333333 -> 0.333
    assert m.execution_quality_score == Decimal("0.333")
    assert m.market_conditions["referenceSource"] is None


def test_rejection_has_no_price_metrics_and_counts_as_an_error() -> None:
    # GIVEN a rejection 80 ms after the order
    r = report(
        status=ExecutionStatus.REJECTED,
        filled_quantity=0,
        average_price=None,
        event_time=ORDER_TIME + timedelta(milliseconds=80),
        status_message="RMS: margin exceeds",
    )
    quote = Quote(bid=Decimal("2499.50"), ask=Decimal("2500.50"))
    # WHEN metrics and the profile observation are built
    m = compute_execution_metrics(
        r, order_time=ORDER_TIME, expected_price=Decimal("2500"), arrival_quote=quote
    )
    obs = profile_observation(m, r.status)
    # THEN fill rate 0, no price metrics, quality 0
    assert m.fill_rate == Decimal("0.00")
    assert m.slippage_bps is None
    assert m.price_improvement_bps is None
    assert m.execution_quality_score == Decimal("0.000")
    # AND the profile learns an error with fill rate 0 and nothing about latency or price
    assert obs is not None
    assert obs.is_error is True
    assert obs.error_rate_sample_pct == 100.0
    assert obs.fill_rate_pct == 0.0
    assert obs.latency_ms is None
    assert obs.slippage_bps is None


def test_filled_report_teaches_the_profile_everything() -> None:
    # GIVEN the metrics of a filled buy
    r = report()
    m = compute_execution_metrics(
        r,
        order_time=ORDER_TIME,
        expected_price=Decimal("2500.00"),
        arrival_quote=Quote(bid=Decimal("2499.50"), ask=Decimal("2500.50")),
    )
    # WHEN the observation is built
    obs = profile_observation(m, r.status)
    # THEN it carries latency, full fill, slippage and price improvement, no error
    assert obs is not None
    assert obs.latency_ms == 250.0
    assert obs.fill_rate_pct == 100.0
    assert obs.slippage_bps == pytest.approx(1.9996)
    assert obs.price_improvement_bps == 0.0
    assert obs.is_error is False
    assert obs.error_rate_sample_pct == 0.0


def test_working_reports_do_not_teach_the_profile() -> None:
    # GIVEN a partial fill (non-terminal)
    r = report(
        status=ExecutionStatus.PARTIALLY_FILLED,
        filled_quantity=10,
        average_price=Decimal("2500"),
    )
    m = compute_execution_metrics(r, order_time=ORDER_TIME, expected_price=Decimal("2500"))
    # WHEN the observation is built
    # THEN there is none: each child order counts once, at its terminal report
    assert profile_observation(m, r.status) is None


def test_cancelled_without_fills_teaches_a_zero_fill_rate_only() -> None:
    # GIVEN an IOC order cancelled with nothing filled
    r = report(status=ExecutionStatus.CANCELLED, filled_quantity=0, average_price=None)
    m = compute_execution_metrics(r, order_time=ORDER_TIME, expected_price=Decimal("2500"))
    # WHEN the observation is built
    obs = profile_observation(m, r.status)
    # THEN fill rate 0 is learnt, not latency (no execution), and it is not an error
    assert obs is not None
    assert obs.fill_rate_pct == 0.0
    assert obs.latency_ms is None
    assert obs.is_error is False


@pytest.mark.parametrize(
    ("quote", "side", "source", "reference"),
    [
        (Quote(bid=Decimal(99), ask=Decimal(101), last=Decimal(100)), Side.BUY, "far_touch", "101"),
        (Quote(bid=Decimal(99), ask=Decimal(101), last=Decimal(100)), Side.SELL, "far_touch", "99"),
        (Quote(bid=Decimal(99), last=Decimal(100)), Side.BUY, "last", "100"),
        (Quote(ask=Decimal(101)), Side.SELL, None, None),
    ],
)
def test_price_improvement_reference_prefers_far_touch_then_mid_then_last(
    quote: Quote, side: Side, source: str | None, reference: str | None
) -> None:
    # GIVEN quotes with some sides missing
    r = report(side=side, quantity=10, filled_quantity=10, average_price=Decimal(100))
    # WHEN metrics are computed
    m = compute_execution_metrics(
        r, order_time=ORDER_TIME, expected_price=None, arrival_quote=quote
    )
    # THEN the reference is the far touch when known, else the last price, else none
    assert m.market_conditions["referenceSource"] == source
    assert m.market_conditions["referencePrice"] == reference
    assert (m.price_improvement_bps is None) == (reference is None)


def test_small_clock_skew_is_clamped_to_zero_latency() -> None:
    # GIVEN a broker stamp 2 s before our order time (whole-second stamps, drifting clocks)
    r = report(event_time=ORDER_TIME - timedelta(seconds=2))
    # WHEN metrics are computed
    m = compute_execution_metrics(r, order_time=ORDER_TIME, expected_price=Decimal("2500"))
    # THEN latency is 0 and the clamp is recorded
    assert m.latency_ms == 0
    assert m.market_conditions["clockSkewClampedMs"] == 2000


def test_absurd_clock_skew_is_refused() -> None:
    # GIVEN a broker stamp 10 minutes before the order was sent
    r = report(event_time=ORDER_TIME - timedelta(minutes=10))
    # WHEN metrics are computed
    # THEN the report is refused naming eventTime
    with pytest.raises(InvalidExecutionReportError) as caught:
        compute_execution_metrics(r, order_time=ORDER_TIME, expected_price=Decimal("2500"))
    assert caught.value.field == "eventTime"


@pytest.mark.parametrize("expected", [Decimal(0), Decimal(-5)])
def test_non_positive_expected_price_is_refused(expected: Decimal) -> None:
    # GIVEN an expected price that cannot be
    # WHEN metrics are computed
    # THEN expectedPrice is named
    with pytest.raises(InvalidExecutionReportError) as caught:
        compute_execution_metrics(report(), order_time=ORDER_TIME, expected_price=expected)
    assert caught.value.field == "expectedPrice"


@pytest.mark.parametrize(
    ("expected", "quote"),
    [
        (Decimal(1000), None),
        (None, Quote(bid=Decimal(999), ask=Decimal(1000))),
    ],
)
def test_fill_more_than_100_percent_from_the_reference_is_refused(
    expected: Decimal | None, quote: Quote | None
) -> None:
    # GIVEN a fill at 2501 against an expected price or an arrival ask of 1000 (wrong units or
    #       a bad fill)
    # WHEN metrics are computed
    # THEN the metric is refused instead of poisoning the profile
    with pytest.raises(InvalidExecutionReportError) as caught:
        compute_execution_metrics(
            report(), order_time=ORDER_TIME, expected_price=expected, arrival_quote=quote
        )
    assert caught.value.field == "averagePrice"


def test_naive_order_time_is_refused() -> None:
    # GIVEN an order time without offset
    naive = datetime(2026, 11, 24, 9, 15)
    # WHEN metrics are computed
    # THEN orderTime is named
    with pytest.raises(InvalidExecutionReportError) as caught:
        compute_execution_metrics(report(), order_time=naive, expected_price=Decimal(2500))
    assert caught.value.field == "orderTime"


def test_quality_score_is_bounded_for_extreme_inputs() -> None:
    # GIVEN the best and the worst imaginable executions
    best, _ = quality_score(
        status=ExecutionStatus.FILLED,
        fill_rate=Decimal(100),
        slippage_bps=Decimal(-9999),
        price_improvement_bps=Decimal(9999),
        latency_ms=0,
    )
    worst, _ = quality_score(
        status=ExecutionStatus.PARTIALLY_FILLED,
        fill_rate=Decimal("0.01"),
        slippage_bps=Decimal(9999),
        price_improvement_bps=Decimal(-9999),
        latency_ms=10**9,
    )
    # WHEN compared with the bounds
    # THEN both stay in [0, 1] and order correctly
    assert best == Decimal("1.000")
    assert Decimal(0) <= worst < Decimal("0.01")


def test_quality_weights_can_drop_a_component() -> None:
    # GIVEN weights that ignore latency
    weights = QualityWeights(latency=0)
    # WHEN a full fill at the expected price, at the touch, is scored slowly
    score, _ = quality_score(
        status=ExecutionStatus.FILLED,
        fill_rate=Decimal(100),
        slippage_bps=Decimal(0),
        price_improvement_bps=Decimal(0),
        latency_ms=60_000,
        weights=weights,
    )
    # THEN (0.4*1 + 0.3*1 + 0.2*0.5) / 0.9 = 0.888889 -> 0.889
    assert score == Decimal("0.889")


def test_quality_weights_must_not_all_be_zero() -> None:
    # GIVEN all weights zero
    # WHEN the weights are built
    # THEN they are refused
    with pytest.raises(ValueError, match="at least one quality weight"):
        QualityWeights(fill=0, slippage=0, price_improvement=0, latency=0)


@pytest.mark.parametrize(
    ("status", "ack_ms", "expected"),
    [
        (
            ChildOrderStatus.PLACED,
            42.0,
            ProfileObservation(response_time_ms=42.0, is_error=None),
        ),
        (
            ChildOrderStatus.REJECTED,
            35.0,
            ProfileObservation(response_time_ms=35.0, fill_rate_pct=0.0, is_error=True),
        ),
        (
            ChildOrderStatus.TIMED_OUT,
            2000.0,
            ProfileObservation(
                response_time_ms=2000.0, fill_rate_pct=0.0, is_error=True, is_timeout=True
            ),
        ),
        (ChildOrderStatus.PLACED, None, None),
        (ChildOrderStatus.PENDING, 10.0, None),
    ],
)
def test_placement_teaches_ack_time_and_failed_placements_are_errors(
    status: ChildOrderStatus, ack_ms: float | None, expected: ProfileObservation | None
) -> None:
    # GIVEN a broker's answer to a placement
    # WHEN its observation is built
    observation = placement_observation(status, ack_ms)
    # THEN an acknowledgement teaches its latency only (its report will give the outcome), and
    #      a reject or a timeout is an error sample with nothing filled (a timeout marked as
    #      one: a run of them can be an outage episode)
    assert observation == expected
    if expected is not None and expected.is_error is None:
        assert expected.error_rate_sample_pct is None
