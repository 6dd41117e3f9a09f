"""Execution reports, fill accounting and execution-quality metrics (pure).

A broker tells us about a child order through a webhook; the adapters in
``shared.adapters.brokers.webhooks`` turn every broker's format into one :class:`ExecutionReport`.
This module then answers three questions without any I/O or clock read (times come in):

* what new quantity, at what price, does this report add (:func:`fill_delta`,
  :func:`apply_report`)? Brokers such as Zerodha Kite report *cumulative* filled quantity and
  average price, reports are duplicated and may arrive out of order;
* how good was the execution (:func:`compute_execution_metrics`, docs/architecture.md §5)?
* what does the report teach the broker's profile (:func:`profile_observation`)?

The formulas and the reasons behind them are in ``docs/execution-tracking.md``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from functools import cached_property

from pydantic import Field, JsonValue, model_validator

from shared.domain.errors import InvalidExecutionReportError
from shared.domain.models import (
    BROKER_ID_PATTERN,
    SYMBOL_PATTERN,
    Exchange,
    FrozenModel,
    Quote,
    Side,
)

BPS = Decimal(10_000)
PRICE_QUANTUM = Decimal("0.0001")
"""Prices are stored as ``DECIMAL(12,4)``."""
BPS_QUANTUM = Decimal("0.0001")
"""``slippage_bps`` and ``price_improvement_bps`` are ``DECIMAL(8,4)``."""
FILL_RATE_QUANTUM = Decimal("0.01")
"""``fill_rate`` is ``DECIMAL(5,2)``."""
SCORE_QUANTUM = Decimal("0.001")
"""``execution_quality_score`` is ``DECIMAL(5,3)``."""
MAX_ABS_BPS = Decimal("9999.9999")
"""Largest magnitude a ``DECIMAL(8,4)`` column holds: a 100 % deviation from the reference.

NSE/BSE price bands are at most 20 %, so a fill that far from its reference means the fill or the
reference is wrong; the metric is refused rather than poisoning the broker's moving averages.
"""
DEFAULT_MAX_CLOCK_SKEW = timedelta(seconds=5)
"""Execution times up to this much *before* the order time are clamped to a latency of 0.

Kite, Upstox and Dhan stamp events in whole seconds (IST) while we stamp orders in microseconds,
so a fill in the same second as the order looks up to 1 s early; brokers' clocks drift a little
too. Anything earlier than this is not skew but a wrong timestamp or a wrong order.
"""


class ExecutionStatus(StrEnum):
    """Normalised status of a child order as a broker reports it.

    =================  ========================================================================
    OPEN               accepted, nothing filled yet (includes trigger/validation pending,
                       modified, after-market received: none of them changes a fill)
    PARTIALLY_FILLED   0 < filled < ordered, still working
    FILLED             filled == ordered (terminal)
    CANCELLED          cancelled or expired, possibly after partial fills (terminal)
    REJECTED           refused by the broker or the exchange, nothing filled (terminal)
    =================  ========================================================================
    """

    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        """True when no further fill can follow."""
        return self in _TERMINAL

    @property
    def rank(self) -> int:
        """Precedence among reports with the same cumulative quantity (higher wins).

        Terminal statuses outrank working ones, so a late ``PARTIALLY_FILLED`` never reopens a
        ``CANCELLED`` child with the same fills; the order among terminal statuses only makes the
        outcome independent of arrival order when a broker contradicts itself.
        """
        return _RANK[self]


_TERMINAL = frozenset(
    {ExecutionStatus.FILLED, ExecutionStatus.CANCELLED, ExecutionStatus.REJECTED},
)
_RANK = {
    ExecutionStatus.OPEN: 0,
    ExecutionStatus.PARTIALLY_FILLED: 1,
    ExecutionStatus.REJECTED: 2,
    ExecutionStatus.CANCELLED: 3,
    ExecutionStatus.FILLED: 4,
}


class ExecutionReport(FrozenModel):
    """One broker's word on one child order, normalised.

    Quantities and the average price are *cumulative* for the whole child order, as Kite, Upstox
    and Dhan report them. Impossible combinations raise :class:`InvalidExecutionReportError`
    naming the offending field (camelCase).
    """

    broker_id: str = Field(pattern=BROKER_ID_PATTERN)
    broker_order_id: str = Field(min_length=1, max_length=64)
    child_order_id: str | None = Field(default=None, min_length=1, max_length=50)
    """Our child order id when the broker echoes it (Kite/Upstox ``tag``, Dhan
    ``correlationId``)."""
    exchange_order_id: str | None = Field(default=None, max_length=64)
    status: ExecutionStatus
    quantity: int
    """Ordered quantity of the child order."""
    filled_quantity: int
    """Cumulative filled quantity."""
    average_price: Decimal | None = None
    """Average price of the cumulative fill; ``None`` when nothing is filled."""
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    exchange: Exchange
    side: Side
    event_time: datetime
    """When the broker or exchange says this state was reached (tz-aware)."""
    status_message: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> ExecutionReport:
        _check_quantities(self.quantity, self.filled_quantity)
        _check_average_price(self.filled_quantity, self.average_price)
        _check_status(self.status, self.quantity, self.filled_quantity)
        if self.event_time.utcoffset() is None:
            raise InvalidExecutionReportError("eventTime", "must carry a UTC offset")
        return self

    @cached_property
    def idempotency_key(self) -> str:
        """``broker:broker order id:status:cumulative filled qty`` (docs/architecture.md §6).

        Cached: a frozen report's key never changes, and tracking a batch reads it four times.

        A duplicate webhook yields the same key and is stored once (``report_key`` is unique).
        At most 50 + 64 + 16 + 19 + 3 characters, within ``VARCHAR(200)``.
        """
        parts = (self.broker_id, self.broker_order_id, self.status.value, self.filled_quantity)
        return ":".join(str(part) for part in parts)


def _check_quantities(quantity: int, filled: int) -> None:
    if quantity <= 0:
        raise InvalidExecutionReportError("quantity", f"must be positive, got {quantity}")
    if filled < 0:
        raise InvalidExecutionReportError("filledQuantity", f"must not be negative, got {filled}")
    if filled > quantity:
        raise InvalidExecutionReportError(
            "filledQuantity", f"{filled} exceeds the ordered quantity {quantity}"
        )


def _check_average_price(filled: int, average_price: Decimal | None) -> None:
    if average_price is None:
        if filled > 0:
            raise InvalidExecutionReportError("averagePrice", "required when something is filled")
        return
    if not average_price.is_finite() or average_price <= 0:
        raise InvalidExecutionReportError(
            "averagePrice", f"must be a positive number, got {average_price}"
        )
    if filled == 0:
        raise InvalidExecutionReportError("averagePrice", "must be absent when nothing is filled")


def _check_status(status: ExecutionStatus, quantity: int, filled: int) -> None:
    expected: str | None = None
    if status is ExecutionStatus.FILLED and filled != quantity:
        expected = "filledQuantity == quantity"
    elif status is ExecutionStatus.PARTIALLY_FILLED and not 0 < filled < quantity:
        expected = "0 < filledQuantity < quantity"
    elif status in (ExecutionStatus.OPEN, ExecutionStatus.REJECTED) and filled != 0:
        expected = "filledQuantity == 0"
    elif status is ExecutionStatus.CANCELLED and filled == quantity:
        expected = "filledQuantity < quantity (a fully filled order is FILLED)"
    if expected is not None:
        raise InvalidExecutionReportError(
            "status",
            f"{status.value} requires {expected}; got {filled} of {quantity}",
        )


# --------------------------------------------------------------------------------------------
# Cumulative -> delta


class FillDelta(FrozenModel):
    """What one report adds to a child order: ``quantity`` new shares at ``price``.

    ``quantity == 0`` (and ``price is None``) for duplicates and for reports that arrive after a
    report with a larger cumulative quantity.
    """

    quantity: int = Field(ge=0)
    price: Decimal | None = None


def fill_delta(
    previous_filled_qty: int,
    previous_avg_price: Decimal | None,
    report: ExecutionReport,
) -> FillDelta:
    """Turn a cumulative report into the fill it adds to what is already recorded.

    The delta price is chosen so that notional is conserved::

        previous_qty * previous_avg + delta_qty * delta_price = cum_qty * cum_avg

    Parameters
    ----------
    previous_filled_qty
        Cumulative quantity already recorded for the child order (0 at first).
    previous_avg_price
        Average price of that quantity; ``None`` when nothing is recorded.
    report
        The new cumulative report.

    Returns
    -------
    FillDelta
        The new shares and their price, quantised to 4 decimals (``DECIMAL(12,4)``); zero when
        the report is not ahead of the recorded state (duplicate or out of order): state never
        regresses.

    Raises
    ------
    InvalidExecutionReportError
        When the recorded state is impossible, or when the cumulative average implies a
        non-positive price for the new shares (the broker's figures contradict each other).

    Notes
    -----
    Brokers round the cumulative average (Kite to 2 decimals); the derived price carries that
    rounding error multiplied by ``cum_qty / delta_qty``, so a tiny last fill on a large order can
    be off by a few paise. The cumulative average itself stays authoritative for the child.
    """
    if previous_filled_qty < 0:
        raise InvalidExecutionReportError(
            "previousFilledQuantity", f"must not be negative, got {previous_filled_qty}"
        )
    if previous_filled_qty > 0 and (previous_avg_price is None or previous_avg_price <= 0):
        raise InvalidExecutionReportError(
            "previousAveragePrice", "must be a positive price when something is already filled"
        )
    delta_qty = report.filled_quantity - previous_filled_qty
    if delta_qty <= 0:
        return FillDelta(quantity=0)
    assert report.average_price is not None  # guaranteed by ExecutionReport when filled > 0
    previous_notional = previous_filled_qty * (previous_avg_price or Decimal(0))
    cumulative_notional = report.filled_quantity * report.average_price
    price = (cumulative_notional - previous_notional) / delta_qty
    if price <= 0:
        raise InvalidExecutionReportError(
            "averagePrice",
            f"{report.filled_quantity} @ {report.average_price} after {previous_filled_qty} @ "
            f"{previous_avg_price} implies a non-positive price {price} for {delta_qty} shares",
        )
    return FillDelta(quantity=delta_qty, price=price.quantize(PRICE_QUANTUM, ROUND_HALF_EVEN))


class ChildExecutionState(FrozenModel):
    """What we hold about a child order's execution: the best-known cumulative state."""

    status: ExecutionStatus
    filled_quantity: int = Field(ge=0)
    average_price: Decimal | None = None


class StateTransition(FrozenModel):
    """Result of folding one report into a child's state."""

    state: ChildExecutionState
    delta: FillDelta
    advanced: bool
    """False when the report changed nothing (a duplicate or a stale, out-of-order report)."""


def apply_report(state: ChildExecutionState | None, report: ExecutionReport) -> StateTransition:
    """Fold a report into a child's execution state; the final state ignores arrival order.

    Rule: the state follows the report with the greatest ``(filled_quantity, status.rank)``.
    Fills only move forward (a lower cumulative quantity is stale and adds nothing); at equal
    quantity a terminal status beats a working one (``CANCELLED`` after ``PARTIALLY_FILLED`` of
    the same 40 shares wins whichever arrives last). Because the winner is a maximum, any
    permutation of the same reports ends in the same state. The data layer applies the same rule
    in SQL with a ``WHERE (filled_quantity, status_rank) < (new_qty, new_rank)`` guard.

    Parameters
    ----------
    state
        Current state, ``None`` before the first report.
    report
        The report to fold in.

    Returns
    -------
    StateTransition
        The new state, the fill delta to record, and whether anything changed.
    """
    if state is None:
        delta = fill_delta(0, None, report)
        new = ChildExecutionState(
            status=report.status,
            filled_quantity=report.filled_quantity,
            average_price=report.average_price,
        )
        return StateTransition(state=new, delta=delta, advanced=True)
    delta = fill_delta(state.filled_quantity, state.average_price, report)
    ahead = (report.filled_quantity, report.status.rank) > (
        state.filled_quantity,
        state.status.rank,
    )
    if not ahead:
        return StateTransition(state=state, delta=FillDelta(quantity=0), advanced=False)
    if delta.quantity > 0:
        new = ChildExecutionState(
            status=report.status,
            filled_quantity=report.filled_quantity,
            average_price=report.average_price,
        )
    else:
        # Same fills, stronger status: keep the recorded average (first report to reach this
        # quantity), so a broker re-rounding the average cannot shift an already booked fill.
        new = state.model_copy(update={"status": report.status})
    return StateTransition(state=new, delta=delta, advanced=True)


# --------------------------------------------------------------------------------------------
# Metrics


class QualityWeights(FrozenModel):
    """Weights and scales of the execution-quality blend (see ``docs/execution-tracking.md``)."""

    fill: float = Field(default=0.4, ge=0)
    slippage: float = Field(default=0.3, ge=0)
    price_improvement: float = Field(default=0.2, ge=0)
    latency: float = Field(default=0.1, ge=0)
    slippage_half_bps: float = Field(default=25.0, gt=0)
    """Adverse slippage at which the slippage component falls to 0.5."""
    improvement_scale_bps: float = Field(default=10.0, gt=0)
    """Logistic scale of the price-improvement component (0 bps -> 0.5)."""
    latency_half_ms: float = Field(default=1000.0, gt=0)
    """Latency at which the latency component falls to 0.5."""

    @model_validator(mode="after")
    def _some_weight(self) -> QualityWeights:
        if self.fill + self.slippage + self.price_improvement + self.latency <= 0:
            raise ValueError("at least one quality weight must be positive")
        return self


DEFAULT_QUALITY_WEIGHTS = QualityWeights()


class ExecutionMetrics(FrozenModel):
    """Metrics of one report: a row of ``execution_metrics`` (without its keys).

    Price metrics describe the cumulative fill so far; they are ``None`` when nothing is filled
    or the reference is unknown.
    """

    latency_ms: int = Field(ge=0)
    slippage_bps: Decimal | None = None
    price_improvement_bps: Decimal | None = None
    fill_rate: Decimal = Field(ge=0, le=100)
    """Percentage 0-100, two decimals."""
    execution_quality_score: Decimal = Field(ge=0, le=1)
    """Three decimals, as ``DECIMAL(5,3)``."""
    market_conditions: dict[str, JsonValue]
    """Reference prices, spread, clock-skew clamp and score components (the JSONB column).
    Prices are strings to keep them exact."""


def compute_execution_metrics(
    report: ExecutionReport,
    *,
    order_time: datetime,
    expected_price: Decimal | None,
    arrival_quote: Quote | None = None,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    weights: QualityWeights = DEFAULT_QUALITY_WEIGHTS,
) -> ExecutionMetrics:
    """Compute latency, slippage, price improvement, fill rate and quality of one report.

    With side sign ``s`` (+1 buy, -1 sell), executed price ``P`` (cumulative average) and ``M``
    the arrival reference: the far touch (ask for a buy, bid for a sell: SEC Rule 605's
    reference for price improvement) when known, else the arrival mid, else the last price;
    ``d = s * 1e4 * (P - M) / M`` the signed distance in bps (positive = worse for the trader):

    * latency ms = ``report.event_time - order_time`` (clamped to 0 within ``max_clock_skew``);
    * slippage bps = ``max(0, d)``: how far outside the quote the fill was (Rule 605's
      "executed outside the quote");
    * price improvement bps = ``max(0, -d)``: how far inside it (Rule 605's price improvement);
    * fill rate % = ``filled / ordered * 100``;
    * quality score: see :func:`quality_score`.

    Both are measured against the market as it was when the order arrived, never against the
    router's own expected price: that price already contains the learned slippage, so learning
    against it converges to a fraction of the truth. ``slippage - improvement = d``, and the
    engine adds the half spread to it, so their moving averages give the expected distance
    from the arrival mid without counting anything twice.

    Parameters
    ----------
    report
        The normalised report.
    order_time
        When we sent the child order (tz-aware).
    expected_price
        The router's expected execution price for this child, recorded for audit
        (``vsExpectedBps``); it is no learning reference.
    arrival_quote
        The server's bid/ask/last when the order arrived; ``None`` leaves slippage and price
        improvement unknown.
    max_clock_skew
        How far before ``order_time`` an event may be stamped and still count (as latency 0).
    weights
        Weights and scales of the quality blend.

    Returns
    -------
    ExecutionMetrics

    Raises
    ------
    InvalidExecutionReportError
        ``orderTime``/``eventTime`` naive or the event earlier than ``order_time`` beyond the
        skew tolerance; ``expectedPrice`` not positive; ``averagePrice`` more than 100 % away
        from its reference.
    """
    if order_time.utcoffset() is None:
        raise InvalidExecutionReportError("orderTime", "must carry a UTC offset")
    if expected_price is not None and (not expected_price.is_finite() or expected_price <= 0):
        raise InvalidExecutionReportError(
            "expectedPrice", f"must be a positive price, got {expected_price}"
        )
    conditions: dict[str, JsonValue] = {}
    latency_ms = _latency_ms(report.event_time, order_time, max_clock_skew, conditions)
    fill_rate = (Decimal(report.filled_quantity) * 100 / report.quantity).quantize(
        FILL_RATE_QUANTUM, ROUND_HALF_EVEN
    )

    executed = report.average_price
    sign = report.side.sign
    slippage: Decimal | None = None
    improvement: Decimal | None = None
    if expected_price is not None:
        conditions["expectedPrice"] = str(expected_price)
    reference, source = _market_reference(report.side, arrival_quote, conditions)
    if executed is not None:
        conditions["executedPrice"] = str(executed)
        if expected_price is not None:
            # Audit only (how the router's promise held); still a fill more than 100 % from
            # what the router expected is refused, as one that far from the market is.
            conditions["vsExpectedBps"] = float(
                _bps(sign * (executed - expected_price) / expected_price, "expected price")
            )
        if reference is not None:
            distance = _bps(sign * (executed - reference) / reference, f"{source} price")
            slippage = max(Decimal(0), distance)
            improvement = max(Decimal(0), -distance)

    score, components = quality_score(
        status=report.status,
        fill_rate=fill_rate,
        slippage_bps=slippage,
        price_improvement_bps=improvement,
        latency_ms=latency_ms,
        weights=weights,
    )
    conditions["qualityComponents"] = dict(components)
    return ExecutionMetrics(
        latency_ms=latency_ms,
        slippage_bps=slippage,
        price_improvement_bps=improvement,
        fill_rate=fill_rate,
        execution_quality_score=score,
        market_conditions=conditions,
    )


def _latency_ms(
    event_time: datetime,
    order_time: datetime,
    max_clock_skew: timedelta,
    conditions: dict[str, JsonValue],
) -> int:
    elapsed = event_time - order_time
    if elapsed >= timedelta(0):
        return elapsed // timedelta(milliseconds=1)
    if -elapsed > max_clock_skew:
        raise InvalidExecutionReportError(
            "eventTime",
            f"{event_time.isoformat()} is {-elapsed.total_seconds():.3f} s before the order time "
            f"{order_time.isoformat()}, beyond the {max_clock_skew.total_seconds():g} s "
            "clock-skew tolerance",
        )
    conditions["clockSkewClampedMs"] = -elapsed // timedelta(milliseconds=1)
    return 0


def _market_reference(
    side: Side, quote: Quote | None, conditions: dict[str, JsonValue]
) -> tuple[Decimal | None, str | None]:
    """The price-improvement reference: far touch, else mid, else last (SEC Rule 605)."""
    if quote is None:
        conditions["referenceSource"] = None
        return None, None
    for name in ("bid", "ask", "last"):
        value = getattr(quote, name)
        if value is not None:
            conditions[name] = str(value)
    if quote.bid is not None and quote.ask is not None:
        mid = (quote.bid + quote.ask) / 2
        conditions["mid"] = str(mid)
        conditions["spreadBps"] = float((quote.ask - quote.bid) / mid * BPS)
    far_touch = quote.ask if side is Side.BUY else quote.bid
    reference: Decimal | None
    source: str | None
    if far_touch is not None:
        reference, source = far_touch, "far_touch"
    elif quote.bid is not None and quote.ask is not None:
        reference, source = (quote.bid + quote.ask) / 2, "mid"
    elif quote.last is not None:
        reference, source = quote.last, "last"
    else:
        reference, source = None, None
    conditions["referenceSource"] = source
    conditions["referencePrice"] = None if reference is None else str(reference)
    return reference, source


def _bps(ratio: Decimal, against: str) -> Decimal:
    value = (ratio * BPS).quantize(BPS_QUANTUM, ROUND_HALF_EVEN)
    if abs(value) > MAX_ABS_BPS:
        raise InvalidExecutionReportError(
            "averagePrice",
            f"{value} bps from the {against}: more than 100 % away, the fill or the reference "
            "is wrong",
        )
    return value


def quality_score(
    *,
    status: ExecutionStatus,
    fill_rate: Decimal,
    slippage_bps: Decimal | None,
    price_improvement_bps: Decimal | None,
    latency_ms: int,
    weights: QualityWeights = DEFAULT_QUALITY_WEIGHTS,
) -> tuple[Decimal, dict[str, float]]:
    """Blend fill, slippage, price improvement and latency into a score in [0, 1].

    Components, each in [0, 1]::

        F = fill_rate / 100
        S = 1 / (1 + max(0, slippage_bps) / slippage_half_bps)     (1 at or better than expected)
        I = 1 / (1 + exp(-price_improvement_bps / improvement_scale_bps))   (0.5 at the touch)
        L = 1 / (1 + latency_ms / latency_half_ms)

        Q = (wF F + wS S + wI I + wL L) / (sum of the weights of the known components)

    Defaults ``wF, wS, wI, wL = 0.4, 0.3, 0.2, 0.1``. A component whose input is unknown (no
    expected price, no quote) drops out and the others are renormalised, so a missing quote
    neither rewards nor punishes a broker. A report with nothing filled, and every rejection,
    scores 0: there is no execution to grade.

    Parameters
    ----------
    status
        Normalised status of the report.
    fill_rate
        Percentage 0-100.
    slippage_bps, price_improvement_bps
        As computed by :func:`compute_execution_metrics`, ``None`` when unknown.
    latency_ms
        Non-negative latency.
    weights
        Weights and scales.

    Returns
    -------
    tuple[Decimal, dict[str, float]]
        The score quantised to 3 decimals and the components used (for the JSONB column).
    """
    if status is ExecutionStatus.REJECTED or fill_rate <= 0:
        return Decimal("0.000"), {}
    components: dict[str, float] = {"fill": float(fill_rate) / 100.0}
    if slippage_bps is not None:
        adverse = max(0.0, float(slippage_bps))
        components["slippage"] = 1.0 / (1.0 + adverse / weights.slippage_half_bps)
    if price_improvement_bps is not None:
        x = float(price_improvement_bps) / weights.improvement_scale_bps
        components["priceImprovement"] = _logistic(x)
    components["latency"] = 1.0 / (1.0 + latency_ms / weights.latency_half_ms)
    weight_of = {
        "fill": weights.fill,
        "slippage": weights.slippage,
        "priceImprovement": weights.price_improvement,
        "latency": weights.latency,
    }
    total_weight = sum(weight_of[name] for name in components)
    if total_weight <= 0:
        return Decimal("0.000"), components
    blended = sum(weight_of[name] * value for name, value in components.items()) / total_weight
    score = Decimal(repr(min(1.0, max(0.0, blended)))).quantize(SCORE_QUANTUM, ROUND_HALF_EVEN)
    return score, {name: round(value, 6) for name, value in components.items()}


def _logistic(x: float) -> float:
    # Written per sign so exp never overflows for absurd inputs.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# --------------------------------------------------------------------------------------------
# Profile learning


class ProfileObservation(FrozenModel):
    """What one report or placement contributes to a broker profile's moving averages.

    ``None`` leaves that average untouched. The profile repository applies it in one statement.
    ``is_error`` is the child's outcome sample: ``True`` (rejected, timed out) or ``False``
    (executed or cancelled) moves the error rate and counts one sample; ``None`` (an
    acknowledgement whose outcome a report will tell) moves neither, so every child order is
    one sample of the error rate.
    """

    latency_ms: float | None = Field(default=None, ge=0)
    fill_rate_pct: float | None = Field(default=None, ge=0, le=100)
    slippage_bps: float | None = None
    price_improvement_bps: float | None = None
    response_time_ms: float | None = Field(default=None, ge=0)
    """The broker's acknowledgement time of one placement."""
    is_error: bool | None = False
    is_timeout: bool = False
    """The error was no answer at all (a placement timeout or a failed connection): a run of
    them is an outage episode, not per-order reliability (docs/routing-engine.md, "Outages")."""

    @property
    def error_rate_sample_pct(self) -> float | None:
        """The sample for ``error_rate_percentage``: 100 for an error, 0 for a success."""
        if self.is_error is None:
            return None
        return 100.0 if self.is_error else 0.0


def profile_observation(
    metrics: ExecutionMetrics, status: ExecutionStatus
) -> ProfileObservation | None:
    """Build the profile observation of a report, or ``None`` when it should teach nothing.

    Only terminal reports teach the profile, so every child order counts once however many
    partial-fill reports it produced (otherwise a broker that fills in many small prints would
    weigh more, and its intermediate fill rates of 20 %, 40 %... would drag its average down).

    ========== ========= =========== ================== ========
    status     latency   fill rate   slippage / PI       error
    ========== ========= =========== ================== ========
    FILLED     yes       100         yes (if known)      no
    CANCELLED  if fills  filled %    if fills            no
    REJECTED   no        0           no                  yes
    OPEN/PART. -- no observation --
    ========== ========= =========== ================== ========

    Parameters
    ----------
    metrics
        Metrics of the report.
    status
        Its normalised status.

    Returns
    -------
    ProfileObservation | None
    """
    if not status.is_terminal:
        return None
    if status is ExecutionStatus.REJECTED:
        return ProfileObservation(fill_rate_pct=0.0, is_error=True)
    filled = metrics.fill_rate > 0
    return ProfileObservation(
        latency_ms=float(metrics.latency_ms) if filled else None,
        fill_rate_pct=float(metrics.fill_rate),
        slippage_bps=float_or_none(metrics.slippage_bps),
        price_improvement_bps=float_or_none(metrics.price_improvement_bps),
        is_error=False,
    )


def float_or_none(value: Decimal | None) -> float | None:
    """``value`` as a float, keeping ``None`` (an unknown metric stays unknown)."""
    return None if value is None else float(value)
