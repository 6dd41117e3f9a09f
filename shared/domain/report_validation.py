"""Whether a well-formed broker report can be true of the child order it names (pure).

One rule, :func:`check_report`, used twice: by the webhook before it answers the broker, and by
the tracker again at apply time inside the batch's transaction (the child may have moved on in
between: another report of the same batch, a rejection, a broker order id learned). A report
that breaks the rule is *quarantined* (stored with its reason, never applied), not raised, so it
can neither poison what the router learns nor fail its event until it is dead-lettered.

Bands and reasons are documented in ``docs/execution-tracking.md`` ("Validation and quarantine").
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from shared.domain.errors import InvalidExecutionReportError
from shared.domain.execution import (
    DEFAULT_MAX_CLOCK_SKEW,
    ExecutionReport,
    fill_delta,
)
from shared.domain.models import FrozenModel, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus

MAX_PRICE = Decimal("99999999.9999")
"""Largest price the ``DECIMAL(12,4)`` columns hold."""


class QuarantineReason(StrEnum):
    """Why a report was quarantined (the ``reason`` of ``quarantined_reports`` and the metric)."""

    IMPOSSIBLE_REPORT = "IMPOSSIBLE_REPORT"
    """The report contradicts itself (filled more than it says was ordered, a zero price...)."""
    BROKER_MISMATCH = "BROKER_MISMATCH"
    """It names a child that was sent to another broker."""
    BROKER_ORDER_MISMATCH = "BROKER_ORDER_MISMATCH"
    """The child is known to the broker by another order id."""
    SYMBOL_MISMATCH = "SYMBOL_MISMATCH"
    EXCHANGE_MISMATCH = "EXCHANGE_MISMATCH"
    SIDE_MISMATCH = "SIDE_MISMATCH"
    QUANTITY_MISMATCH = "QUANTITY_MISMATCH"
    """The broker says more was ordered than we sent."""
    OVERFILL = "OVERFILL"
    """More filled than the child's quantity."""
    FILL_AFTER_CLOSE = "FILL_AFTER_CLOSE"
    """New fills on a child that was already rejected, cancelled or filled."""
    FILL_REGRESSION = "FILL_REGRESSION"
    """A final status with less filled than already recorded."""
    EVENT_BEFORE_ORDER = "EVENT_BEFORE_ORDER"
    EVENT_IN_FUTURE = "EVENT_IN_FUTURE"
    PRICE_OUT_OF_BAND = "PRICE_OUT_OF_BAND"
    LIMIT_PRICE_VIOLATED = "LIMIT_PRICE_VIOLATED"
    FILL_PRICE_IMPOSSIBLE = "FILL_PRICE_IMPOSSIBLE"
    """The cumulative average implies a non-positive or unstorable price for the new shares."""


class ReportRules(FrozenModel):
    """The bands of :func:`check_report` (defaults documented in docs/execution-tracking.md)."""

    price_band: Decimal = Field(default=Decimal("0.25"), gt=0, lt=1)
    """Largest relative distance of the average price from each known reference (expected
    price, arrival mid): NSE/BSE circuit bands are at most 20 %, so 25 % is never a real fill."""
    limit_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0)
    """How far beyond its limit a limit child's average may be (brokers round averages to
    the paisa)."""
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    """How far before the child was placed an event may be stamped."""
    max_future: timedelta = timedelta(minutes=5)
    """How far after now an event may be stamped (the signed-webhook replay window)."""


DEFAULT_REPORT_RULES = ReportRules()

# Children that can take no further fill. TIMED_OUT is not one: a broker may fill after we gave
# up on it (the documented late fill, which makes the order OVERFILLED).
_CLOSED = frozenset(
    {ChildOrderStatus.FILLED, ChildOrderStatus.REJECTED, ChildOrderStatus.CANCELLED}
)


class ReportViolation(FrozenModel):
    """Why a report cannot be applied to its child."""

    reason: QuarantineReason
    field: str
    """The report field at fault (camelCase)."""
    message: str


def check_report(
    child: ChildOrder,
    report: ExecutionReport,
    *,
    now: datetime | None,
    rules: ReportRules = DEFAULT_REPORT_RULES,
) -> ReportViolation | None:
    """The first reason ``report`` cannot be true of ``child`` as it stands, or ``None``.

    Parameters
    ----------
    child
        The child order the report names, in its current state.
    report
        A report that is well formed and internally consistent (an :class:`ExecutionReport`).
    now
        The current time, for the future bound; ``None`` skips it.
    rules
        Bands and tolerances.

    Returns
    -------
    ReportViolation | None
        ``None`` when the report may be applied.
    """
    for check in (_identity, _quantities, _event_time, _prices):
        violation = check(child, report, now, rules)
        if violation is not None:
            return violation
    return None


def _violation(reason: QuarantineReason, field: str, message: str) -> ReportViolation:
    return ReportViolation(reason=reason, field=field, message=message)


def _identity(
    child: ChildOrder, report: ExecutionReport, _now: datetime | None, _rules: ReportRules
) -> ReportViolation | None:
    name = child.child_order_id
    if report.broker_id != child.broker_id:
        return _violation(
            QuarantineReason.BROKER_MISMATCH,
            "brokerId",
            f"child {name} was sent to {child.broker_id}, not {report.broker_id}",
        )
    if child.broker_order_id is not None and report.broker_order_id != child.broker_order_id:
        return _violation(
            QuarantineReason.BROKER_ORDER_MISMATCH,
            "brokerOrderId",
            f"child {name} is broker order {child.broker_order_id}, not {report.broker_order_id}",
        )
    pairs = (
        (QuarantineReason.SYMBOL_MISMATCH, "symbol", child.symbol, report.symbol),
        (QuarantineReason.EXCHANGE_MISMATCH, "exchange", child.exchange, report.exchange),
        (QuarantineReason.SIDE_MISMATCH, "side", child.side, report.side),
    )
    for reason, field, ours, theirs in pairs:
        if ours != theirs:
            return _violation(reason, field, f"child {name} is {ours}, the report says {theirs}")
    return None


def _quantities(
    child: ChildOrder, report: ExecutionReport, _now: datetime | None, _rules: ReportRules
) -> ReportViolation | None:
    name = child.child_order_id
    if report.filled_quantity > child.quantity:
        return _violation(
            QuarantineReason.OVERFILL,
            "filledQuantity",
            f"{report.filled_quantity} filled of child {name}'s {child.quantity}",
        )
    if report.quantity > child.quantity:
        # Less is a modification (the broker's ordered quantity went down); more was never sent.
        return _violation(
            QuarantineReason.QUANTITY_MISMATCH,
            "quantity",
            f"{report.quantity} ordered, but child {name} sent {child.quantity}",
        )
    if child.status in _CLOSED and report.filled_quantity > child.filled_quantity:
        return _violation(
            QuarantineReason.FILL_AFTER_CLOSE,
            "filledQuantity",
            f"child {name} is {child.status.value} at {child.filled_quantity}; the report says "
            f"{report.filled_quantity} filled",
        )
    if report.status.is_terminal and report.filled_quantity < child.filled_quantity:
        # A working report behind the recorded fill is merely late (reports arrive out of
        # order); a final one that undoes fills contradicts what the broker said before.
        return _violation(
            QuarantineReason.FILL_REGRESSION,
            "filledQuantity",
            f"{report.status.value} at {report.filled_quantity}, but child {name} has "
            f"{child.filled_quantity} filled",
        )
    return None


def _event_time(
    child: ChildOrder, report: ExecutionReport, now: datetime | None, rules: ReportRules
) -> ReportViolation | None:
    if child.placed_at is not None and report.event_time < child.placed_at - rules.max_clock_skew:
        return _violation(
            QuarantineReason.EVENT_BEFORE_ORDER,
            "eventTime",
            f"{report.event_time.isoformat()} is before child {child.child_order_id} was placed "
            f"({child.placed_at.isoformat()}), beyond the "
            f"{rules.max_clock_skew.total_seconds():g} s clock-skew tolerance",
        )
    if now is not None and report.event_time > now + rules.max_future:
        return _violation(
            QuarantineReason.EVENT_IN_FUTURE,
            "eventTime",
            f"{report.event_time.isoformat()} is more than "
            f"{rules.max_future.total_seconds():g} s after now ({now.isoformat()})",
        )
    return None


def _prices(
    child: ChildOrder, report: ExecutionReport, _now: datetime | None, rules: ReportRules
) -> ReportViolation | None:
    price = report.average_price
    if price is None:
        return None
    if price > MAX_PRICE:
        return _violation(
            QuarantineReason.PRICE_OUT_OF_BAND, "averagePrice", f"{price} exceeds {MAX_PRICE}"
        )
    for name, reference in _references(child):
        if abs(price - reference) > rules.price_band * reference:
            return _violation(
                QuarantineReason.PRICE_OUT_OF_BAND,
                "averagePrice",
                f"{price} is more than {rules.price_band * 100:g} % from the {name} {reference}",
            )
    limit = child.limit_price
    if limit is not None:
        beyond = (price - limit) if child.side is Side.BUY else (limit - price)
        if beyond > rules.limit_tolerance:
            worse = "above" if child.side is Side.BUY else "below"
            return _violation(
                QuarantineReason.LIMIT_PRICE_VIOLATED,
                "averagePrice",
                f"{price} is {worse} the {child.side.value} limit {limit}",
            )
    return _fill_price(child, report)


def _references(child: ChildOrder) -> list[tuple[str, Decimal]]:
    references = []
    if child.expected_price is not None and child.expected_price > 0:
        references.append(("expected price", child.expected_price))
    if child.arrival_bid is not None and child.arrival_ask is not None:
        mid = (child.arrival_bid + child.arrival_ask) / 2
        if mid > 0:
            references.append(("arrival mid", mid))
    return references


def _fill_price(child: ChildOrder, report: ExecutionReport) -> ReportViolation | None:
    # The same arithmetic the tracker books: a cumulative average that implies a non-positive
    # or unstorable price for the new shares cannot be recorded.
    try:
        delta = fill_delta(child.filled_quantity, child.average_price, report)
    except InvalidExecutionReportError as exc:
        return _violation(QuarantineReason.FILL_PRICE_IMPOSSIBLE, exc.field, exc.reason)
    except ArithmeticError:  # decimal.InvalidOperation: too many digits to quantise
        return _violation(
            QuarantineReason.FILL_PRICE_IMPOSSIBLE, "averagePrice", "implies an unstorable price"
        )
    if delta.price is not None and delta.price > MAX_PRICE:
        return _violation(
            QuarantineReason.FILL_PRICE_IMPOSSIBLE,
            "averagePrice",
            f"implies {delta.price} for {delta.quantity} new shares, above {MAX_PRICE}",
        )
    return None


def report_fingerprint(report: ExecutionReport) -> str:
    """SHA-256 hex of the report's canonical JSON: equal for the same report, whoever sent it.

    Idempotency keys identify a report's *position* (broker order, status, filled quantity),
    not its content; the fingerprint tells a resent copy from a correction with the same key.
    """
    canonical = json.dumps(
        report.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
