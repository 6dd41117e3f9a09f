"""Execution analytics of one trader over a window of days."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field

from shared.domain.models import FrozenModel


class ExecutionStats(FrozenModel):
    """Execution quality over a set of child executions.

    Counts and sums are 0 for an empty set; a rate or an average with nothing to average
    (no quantity routed, no execution measured) is ``None`` (JSON ``null``), never 0.0, which
    would read as a measured perfect latency or zero slippage.
    """

    orders: int = 0
    child_executions: int = 0
    filled_quantity: int = 0
    ordered_quantity: int = 0
    """Quantity routed: for a broker, every child sent to it, rejected and timed out too."""
    fill_rate_percentage: float | None = None
    """``100 x filled / routed`` (quantity-weighted)."""
    avg_latency_ms: float | None = None
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    avg_slippage_bps: float | None = None
    avg_price_improvement_bps: float | None = None
    total_charges_inr: Decimal = Decimal(0)


class BrokerBreakdown(ExecutionStats):
    """Stats of one broker."""

    broker_id: str


class StrategyBreakdown(ExecutionStats):
    """Stats of one routing strategy."""

    strategy: str


class ExecutionAnalytics(FrozenModel):
    """What ``GET /analytics/execution?days=N`` returns."""

    user_id: str
    days: int = Field(ge=1, le=365)
    summary: ExecutionStats
    by_broker: tuple[BrokerBreakdown, ...] = ()
    by_strategy: tuple[StrategyBreakdown, ...] = ()


# -- roll-ups: mergeable facts, latency histograms and the window plan -------------------------

LATENCY_GROWTH = 1.05
"""Ratio between the bounds of a latency bucket: bucket ``i >= 1`` holds ``[g^(i-1), g^i)`` ms,
bucket 0 holds 0 ms. A percentile read as its bucket's geometric midpoint is within
``sqrt(g) - 1`` (2.47 %) of the exact nearest-rank value; the SQL ``latency_bucket`` (V012) is
the one that files each latency."""

MAX_LATENCY_BUCKET = 500
"""Latencies beyond ``g^499`` ms (about 11 years) share the last bucket."""


def latency_bucket(latency_ms: int) -> int:
    """The bucket a latency is counted in (as the SQL ``latency_bucket`` computes it)."""
    if latency_ms < 1:
        return 0
    return min(1 + math.floor(math.log(latency_ms) / math.log(LATENCY_GROWTH)), MAX_LATENCY_BUCKET)


def bucket_estimate(bucket: int) -> float:
    """The value a percentile falling in ``bucket`` is reported as: its geometric midpoint."""
    if bucket <= 0:
        return 0.0
    return float(LATENCY_GROWTH ** (bucket - 1) * math.sqrt(LATENCY_GROWTH))


def histogram_percentile(histogram: Mapping[int, int], quantile: float) -> float | None:
    """Nearest-rank ``quantile`` (0-1] of a merged latency histogram; ``None`` when empty.

    Parameters
    ----------
    histogram
        Count per bucket (:func:`latency_bucket`).
    quantile
        0.5 for the median, 0.95 for p95.

    Returns
    -------
    float | None
        The estimate of the bucket holding rank ``ceil(quantile x n)``, within 2.47 %.
    """
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(quantile * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_estimate(bucket)
    return bucket_estimate(max(histogram))


@dataclass(frozen=True, slots=True)
class ExecutionFacts:
    """Additive facts of one broker x strategy over a window (roll-up rows and live rows merged).

    ``broker_id`` is ``""`` for the orders row: orders are counted by strategy, not by broker.
    """

    broker_id: str
    strategy: str
    orders: int = 0
    ordered_quantity: int = 0
    executions: int = 0
    filled_quantity: int = 0
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_histogram: Mapping[int, int] = field(default_factory=dict)
    slippage_count: int = 0
    slippage_sum: float = 0.0
    improvement_count: int = 0
    improvement_sum: float = 0.0
    charges_inr: Decimal = Decimal(0)


def _mean(total: float, count: int, places: int) -> float | None:
    return round(total / count, places) if count else None


def _merged_stats(facts: Sequence[ExecutionFacts], orders: int) -> dict[str, Any]:
    histogram: Counter[int] = Counter()
    for fact in facts:
        histogram.update(fact.latency_histogram)
    filled = sum(f.filled_quantity for f in facts)
    ordered = sum(f.ordered_quantity for f in facts)
    latency_count = sum(f.latency_count for f in facts)
    p50, p95 = histogram_percentile(histogram, 0.5), histogram_percentile(histogram, 0.95)
    return {
        "orders": orders,
        "child_executions": sum(f.executions for f in facts),
        "filled_quantity": filled,
        "ordered_quantity": ordered,
        "fill_rate_percentage": round(100.0 * filled / ordered, 2) if ordered else None,
        "avg_latency_ms": _mean(sum(f.latency_sum for f in facts), latency_count, 2),
        "p50_latency_ms": None if p50 is None else round(p50, 2),
        "p95_latency_ms": None if p95 is None else round(p95, 2),
        "avg_slippage_bps": _mean(
            sum(f.slippage_sum for f in facts), sum(f.slippage_count for f in facts), 4
        ),
        "avg_price_improvement_bps": _mean(
            sum(f.improvement_sum for f in facts), sum(f.improvement_count for f in facts), 4
        ),
        "total_charges_inr": sum((f.charges_inr for f in facts), Decimal(0)).quantize(
            Decimal("0.01")
        ),
    }


def merge_facts(user_id: str, days: int, facts: Sequence[ExecutionFacts]) -> ExecutionAnalytics:
    """The analytics of a window from its facts: summary, per broker and per strategy.

    Counts and sums add; p50/p95 come from the merged histograms; a mean or rate over nothing
    is ``None``.
    """
    order_rows = [f for f in facts if not f.broker_id]
    broker_rows = [f for f in facts if f.broker_id]
    brokers = sorted({f.broker_id for f in broker_rows})
    strategies = sorted({f.strategy for f in facts})
    return ExecutionAnalytics(
        user_id=user_id,
        days=days,
        summary=ExecutionStats(**_merged_stats(broker_rows, sum(f.orders for f in order_rows))),
        by_broker=tuple(
            BrokerBreakdown(broker_id=b, **_merged_stats(rows, sum(f.orders for f in rows)))
            for b in brokers
            for rows in ([f for f in broker_rows if f.broker_id == b],)
        ),
        by_strategy=tuple(
            StrategyBreakdown(
                strategy=s,
                **_merged_stats(
                    [f for f in broker_rows if f.strategy == s],
                    sum(f.orders for f in order_rows if f.strategy == s),
                ),
            )
            for s in strategies
        ),
    )


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def floor_hour(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC hour (tz-aware in, UTC out)."""
    utc = moment.astimezone(UTC)
    return utc.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    return floor_hour(moment).replace(hour=0)


def floor_month(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC month."""
    return floor_day(moment).replace(day=1)


def _ceil(moment: datetime, floor: Callable[[datetime], datetime], step: timedelta) -> datetime:
    # The next boundary at or after ``moment``; a month's is found past its longest length.
    low = floor(moment)
    return low if low == moment else floor(low + step)


@dataclass(frozen=True, slots=True)
class AnalyticsWindow:
    """Where each part of a window is read from.

    ``[start, now)`` is the window: ``ranges`` of roll-up rows (grain ``m``onth, ``d``ay or
    ``h``our, each ``[from, to)``, together exactly ``[start, live_from)``), then the raw rows
    from ``live_from`` (the current hour, and any hour the roll-up job has not closed yet).
    """

    start: datetime
    ranges: tuple[tuple[str, datetime, datetime], ...]
    live_from: datetime


def _cover(low: datetime, high: datetime) -> list[tuple[str, datetime, datetime]]:
    # Whole months in the middle, whole days around them, hours at the ends: the fewest rows.
    day_low, day_high = _ceil(low, floor_day, DAY), floor_day(high)
    month_low, month_high = _ceil(day_low, floor_month, 31 * DAY), floor_month(day_high)
    if day_low >= day_high:
        parts = [("h", low, high)]
    elif month_low >= month_high:
        parts = [("h", low, day_low), ("d", day_low, day_high), ("h", day_high, high)]
    else:
        parts = [
            ("h", low, day_low),
            ("d", day_low, month_low),
            ("m", month_low, month_high),
            ("d", month_high, day_high),
            ("h", day_high, high),
        ]
    return [(grain, lo, hi) for grain, lo, hi in parts if lo < hi]


def analytics_window(now: datetime, days: int, rolled_through: datetime | None) -> AnalyticsWindow:
    """Plan a window of ``days`` days ending ``now``, given the roll-up watermark.

    The window starts on the hour: the last ``days`` x 24 hours, widened back to the start of
    their first UTC hour. Hours before ``rolled_through`` are rolled up; the rest are live.
    """
    start = floor_hour(now - days * DAY)
    rolled = start if rolled_through is None else max(start, min(rolled_through, floor_hour(now)))
    return AnalyticsWindow(start, tuple(_cover(start, rolled)), rolled)


def rollup_range(
    now: datetime,
    rolled_through: datetime | None,
    earliest: datetime | None,
    *,
    settle: timedelta,
    recheck_hours: int,
    max_hours: int,
) -> tuple[datetime, datetime] | None:
    """The hours the roll-up job rolls in one run, ``None`` when there is nothing to roll.

    An hour is closed ``settle`` after it ends (a transaction stamped inside it has committed
    by then). Each run rolls again the last ``recheck_hours`` hours before the watermark, which
    folds in late rows, then up to ``max_hours`` closed hours after it.
    """
    closed_through = floor_hour(now - settle)
    if rolled_through is None:
        if earliest is None:
            return None
        start = floor_hour(earliest)
        end = min(closed_through, start + max_hours * HOUR)
    else:
        start = floor_hour(rolled_through) - recheck_hours * HOUR
        end = min(closed_through, floor_hour(rolled_through) + max_hours * HOUR)
    return (start, end) if start < end else None
