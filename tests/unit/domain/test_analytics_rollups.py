"""Roll-up arithmetic: latency histograms, merged facts, window plans and roll-up ranges."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.domain.analytics import (
    LATENCY_GROWTH,
    ExecutionFacts,
    analytics_window,
    bucket_estimate,
    histogram_percentile,
    latency_bucket,
    merge_facts,
    rollup_range,
)

NOW = datetime(2026, 12, 1, 5, 19, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))
BOUND = math.sqrt(LATENCY_GROWTH) - 1


def exact_nearest_rank(values: list[int], quantile: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("quantile", [0.5, 0.95, 0.99])
def test_a_histogram_percentile_is_within_the_documented_bound(seed: int, quantile: float) -> None:
    # GIVEN latencies from 1 ms to minutes, log-normally spread
    rng = random.Random(seed)
    values = [max(1, int(rng.lognormvariate(5, 1.5))) for _ in range(2000)]
    histogram: dict[int, int] = {}
    for value in values:
        histogram[latency_bucket(value)] = histogram.get(latency_bucket(value), 0) + 1
    # WHEN the percentile is read from the histogram
    estimate = histogram_percentile(histogram, quantile)
    # THEN it is within sqrt(1.05) - 1 of the exact nearest-rank value
    exact = exact_nearest_rank(values, quantile)
    assert estimate is not None
    assert abs(estimate - exact) / exact <= BOUND + 1e-12


def test_an_empty_histogram_has_no_percentile_and_zero_is_its_own_bucket() -> None:
    # GIVEN no latency, and latencies of 0 ms
    # WHEN percentiles are read
    # THEN nothing measured is None, and 0 ms reads as 0
    assert histogram_percentile({}, 0.5) is None
    assert histogram_percentile({0: 0}, 0.5) is None
    assert histogram_percentile({latency_bucket(0): 3}, 0.95) == 0.0
    assert bucket_estimate(0) == 0.0


def test_buckets_grow_by_five_percent_and_cap() -> None:
    # GIVEN bucket edges WHEN latencies on either side are filed THEN they part there
    assert latency_bucket(1) == 1
    assert latency_bucket(20) < latency_bucket(21) or latency_bucket(20) == latency_bucket(21)
    assert latency_bucket(100) != latency_bucket(106)
    assert latency_bucket(10**30) == 500


def test_merged_facts_count_orders_once_and_leave_the_unmeasured_null() -> None:
    # GIVEN an orders row, two brokers of one strategy (one never measured), and a strategy
    #       with an order but no child
    facts = [
        ExecutionFacts(broker_id="", strategy="BEST_PRICE", orders=2),
        ExecutionFacts(broker_id="", strategy="SMART_BALANCE", orders=1),
        ExecutionFacts(
            broker_id="zerodha",
            strategy="BEST_PRICE",
            orders=2,
            ordered_quantity=200,
            executions=2,
            filled_quantity=150,
            latency_count=2,
            latency_sum=300.0,
            latency_histogram={latency_bucket(100): 1, latency_bucket(200): 1},
            slippage_count=1,
            slippage_sum=3.0,
            charges_inr=Decimal("12.346"),
        ),
        ExecutionFacts(broker_id="dhan", strategy="BEST_PRICE", orders=1, ordered_quantity=100),
    ]
    # WHEN they are merged
    analytics = merge_facts("trader-1", 7, facts)
    # THEN orders come from the orders rows, quantities and latencies from the brokers'
    summary = analytics.summary
    assert (summary.orders, summary.child_executions) == (3, 2)
    assert summary.fill_rate_percentage == 50.0
    assert summary.avg_latency_ms == 150.0
    assert summary.p50_latency_ms == pytest.approx(100, rel=BOUND)
    assert summary.p95_latency_ms == pytest.approx(200, rel=BOUND)
    assert summary.avg_price_improvement_bps is None
    assert summary.total_charges_inr == Decimal("12.35")
    dhan, zerodha = analytics.by_broker
    assert (dhan.broker_id, dhan.p50_latency_ms, dhan.avg_slippage_bps) == ("dhan", None, None)
    assert dhan.fill_rate_percentage == 0.0
    assert zerodha.avg_slippage_bps == 3.0
    best, smart = analytics.by_strategy
    assert (best.orders, best.child_executions) == (2, 2)
    assert (smart.orders, smart.fill_rate_percentage, smart.p95_latency_ms) == (1, None, None)


def test_no_facts_are_zeros() -> None:
    # GIVEN nothing WHEN merged THEN zeros, nulls and no breakdown
    analytics = merge_facts("nobody", 30, [])
    assert analytics.summary.orders == 0
    assert analytics.summary.avg_latency_ms is None
    assert (analytics.by_broker, analytics.by_strategy) == ((), ())


def covered(ranges: tuple[tuple[str, datetime, datetime], ...]) -> list[tuple[datetime, datetime]]:
    return [(low, high) for _, low, high in ranges]


@pytest.mark.parametrize("days", [1, 2, 7, 30, 31, 90, 365])
@pytest.mark.parametrize("lag_hours", [0, 1, 5, 30])
def test_a_window_is_covered_exactly_once(days: int, lag_hours: int) -> None:
    # GIVEN a watermark lagging the current hour by some hours
    rolled = datetime(2026, 12, 1, 5, tzinfo=UTC) - timedelta(hours=lag_hours)
    # WHEN the window is planned
    window = analytics_window(NOW, days, rolled)
    # THEN its ranges tile [start, live_from) without gap or overlap, on their grain's bounds
    spans = covered(window.ranges)
    assert window.start == datetime(2025, 12, 1, 5, tzinfo=UTC) + timedelta(days=365 - days)
    if rolled <= window.start:
        # A watermark before the window: all of it is read raw.
        assert (spans, window.live_from) == ([], window.start)
        return
    assert spans[0][0] == window.start
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert spans[-1][1] == window.live_from == max(window.start, rolled)
    for grain, low, high in window.ranges:
        assert low < high
        if grain == "d":
            assert (low.hour, high.hour) == (0, 0)
        if grain == "m":
            assert (low.day, high.day, low.hour) == (1, 1, 0)
    # AND at most one range of months, two of days and two of hours are read
    pattern = iter(["h", "d", "m", "d", "h"])
    assert all(grain in pattern for grain, _, _ in window.ranges)


def test_a_window_without_a_watermark_is_all_live_and_a_future_one_is_clipped() -> None:
    # GIVEN no roll-up yet, and a watermark in the future
    # WHEN windows are planned
    none_yet = analytics_window(NOW, 30, None)
    ahead = analytics_window(NOW, 30, NOW + timedelta(days=2))
    # THEN the first reads everything raw, the second no further than the current hour
    assert none_yet.ranges == ()
    assert none_yet.live_from == none_yet.start
    assert ahead.live_from == datetime(2026, 12, 1, 5, tzinfo=UTC)


def test_a_window_asked_in_ist_starts_on_a_utc_hour() -> None:
    # GIVEN now as an IST time (10:49 IST = 05:19 UTC)
    # WHEN a day's window is planned
    window = analytics_window(NOW.astimezone(IST), 1, None)
    # THEN it starts on the UTC hour, not on IST's half hour
    assert window.start == datetime(2026, 11, 30, 5, tzinfo=UTC)


def test_rollup_ranges_wait_for_the_settle_time_and_recheck_closed_hours() -> None:
    settle = timedelta(minutes=5)
    # GIVEN no watermark and an execution two days ago, WHEN planned THEN from its hour
    assert rollup_range(
        NOW, None, NOW - timedelta(days=2), settle=settle, recheck_hours=2, max_hours=744
    ) == (datetime(2026, 11, 29, 5, tzinfo=UTC), datetime(2026, 12, 1, 5, tzinfo=UTC))
    # GIVEN nothing stored THEN nothing
    assert rollup_range(NOW, None, None, settle=settle, recheck_hours=2, max_hours=744) is None
    # GIVEN a current watermark THEN only the recheck window is rolled again
    rolled = datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert rollup_range(NOW, rolled, None, settle=settle, recheck_hours=2, max_hours=744) == (
        rolled - timedelta(hours=2),
        rolled,
    )
    # GIVEN 2 minutes past the hour THEN that hour is not closed yet
    early = datetime(2026, 12, 1, 5, 2, tzinfo=UTC)
    assert (
        rollup_range(
            early, rolled - timedelta(hours=1), None, settle=settle, recheck_hours=0, max_hours=744
        )
        is None
    )
    # GIVEN a lagging watermark THEN at most max_hours are rolled after it
    lagging = rolled - timedelta(days=10)
    assert rollup_range(NOW, lagging, None, settle=settle, recheck_hours=2, max_hours=24) == (
        lagging - timedelta(hours=2),
        lagging + timedelta(hours=24),
    )
