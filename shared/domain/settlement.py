"""How child orders settle into a parent's answer, and how a child left PENDING is finished.

The routing service settles children from the brokers' answers as it places them; the reconciler
(:mod:`shared.services.reconcile`) settles the children of an order whose process died between
storing the decision and placing it. Both use these rules, so a reconciled order answers exactly
as if it had been placed then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.domain.contracts import ChildOrderPlacedPayload, DetailType, DomainEvent
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import FrozenModel
from shared.domain.orders import ChildOrder, ChildOrderStatus

FAILED: frozenset[ChildOrderStatus] = frozenset(
    {ChildOrderStatus.REJECTED, ChildOrderStatus.TIMED_OUT}
)
"""Child states whose quantity did not reach the market (a cascade's trigger)."""

NEVER_PLACED = "never placed: reconciled"
"""Reason of a child the broker does not know: it was stored, then the process died."""
UNCONFIRMED = "never confirmed by the broker: reconciled"
"""Reason of a child whose broker could not say whether it holds the order."""
QUANTITY_HELD = "quantity held"
"""End of the reason of a timed-out child whose cancel was not confirmed: nothing cascaded."""


def quantity_moved_on(child: ChildOrder) -> bool:
    """True when ``child`` timed out and its quantity went to another broker.

    Only then can a late fill of it over-fill the order. A timed-out child whose cancel was not
    confirmed kept its quantity (reason ending :data:`QUANTITY_HELD`), and the reconciler never
    cascades (:data:`UNCONFIRMED`): their late fills are the fills the order waited for.
    """
    reason = child.status_reason or ""
    return (
        child.status is ChildOrderStatus.TIMED_OUT
        and not reason.endswith(QUANTITY_HELD)
        and reason != UNCONFIRMED
    )


ParentStatus = Literal["ROUTED", "PARTIALLY_ROUTED", "REJECTED"]


class LookupOutcome(StrEnum):
    """What a broker said when asked for an order by our child order id."""

    FOUND = "FOUND"
    """The broker holds the order: its state is adopted."""
    NOT_FOUND = "NOT_FOUND"
    """The broker has no order with our id: it never reached the broker."""
    UNKNOWN = "UNKNOWN"
    """The broker could not be asked (no look-up in its API, timeout, outage)."""


class BrokerLookup(FrozenModel):
    """A broker's answer to "do you hold the order we tagged with this child order id?"."""

    outcome: LookupOutcome
    status: ChildOrderStatus | None = None
    """The order's state at the broker (``FOUND`` only)."""
    broker_order_id: str | None = None
    reason: str | None = None
    reports: tuple[ExecutionReport, ...] = ()
    """Execution reports the broker gives with the answer (cumulative, like its postbacks)."""
    filled_quantity: int | None = Field(default=None, ge=0)
    """Cumulative quantity the broker filled (``FOUND`` only; ``None`` when it did not say)."""


def settle_child(child: ChildOrder, lookup: BrokerLookup) -> ChildOrder:
    """The state a PENDING child takes once the broker was asked about it.

    Parameters
    ----------
    child
        A child stored PENDING and never answered for.
    lookup
        What its broker said.

    Returns
    -------
    ChildOrder
        ``FOUND``: the broker's state and order id (``PLACED`` when it names none, or gives
        reports, which then settle it through the tracker). ``NOT_FOUND``:
        ``REJECTED`` with :data:`NEVER_PLACED`. ``UNKNOWN``: ``TIMED_OUT`` with
        :data:`UNCONFIRMED`: as for a placement that timed out, a report that arrives later is
        still taken (the tracker's late-fill path), so nothing the broker did is lost.
    """
    if lookup.outcome is LookupOutcome.FOUND:
        status = lookup.status or ChildOrderStatus.PLACED
        if status is ChildOrderStatus.PENDING or lookup.reports:
            # The reports published with the settlement move it on (and are learned from): a
            # child stored closed would refuse their fills as coming after its close.
            status = ChildOrderStatus.PLACED
        return child.model_copy(
            update={
                "status": status,
                "broker_order_id": lookup.broker_order_id or child.broker_order_id,
                "status_reason": lookup.reason,
            }
        )
    if lookup.outcome is LookupOutcome.NOT_FOUND:
        return child.model_copy(
            update={"status": ChildOrderStatus.REJECTED, "status_reason": NEVER_PLACED}
        )
    return child.model_copy(
        update={"status": ChildOrderStatus.TIMED_OUT, "status_reason": UNCONFIRMED}
    )


def aggregate_status(children: Sequence[ChildOrder]) -> str:
    """One allocation's status from its children's (``PARTIALLY_PLACED`` when they differ)."""
    statuses = {c.status for c in children}
    if not statuses:
        return "PENDING"
    if len(statuses) == 1:
        return next(iter(statuses)).value
    if statuses <= FAILED:
        return ChildOrderStatus.REJECTED.value
    return "PARTIALLY_PLACED"


def parent_status(
    children: Sequence[ChildOrder], quantity: int, rerouted: Mapping[str, int] | None = None
) -> ParentStatus:
    """The order's status: how much of ``quantity`` its children got to the market.

    ``rerouted`` is the quantity of a child that went to another broker (by child order id):
    a partial fill's cancelled remainder, a timed-out child cancelled at its broker. It counts
    once, with the child it went to.
    """
    moved = rerouted or {}
    live = sum(
        c.quantity - moved.get(c.child_order_id, 0) for c in children if c.status not in FAILED
    )
    if live == quantity:
        return "ROUTED"
    return "PARTIALLY_ROUTED" if live else "REJECTED"


def child_placed_event(child: ChildOrder, event_id: UUID) -> DomainEvent:
    """``ChildOrderPlaced``: one child's outcome at its broker (keyed by the child)."""
    return DomainEvent(
        event_id=event_id,
        order_id=child.order_id,
        user_id=child.user_id,
        idempotency_key=f"{DetailType.CHILD_ORDER_PLACED}:{child.child_order_id}",
        payload=ChildOrderPlacedPayload(child=child),
    )


TERMINAL_CHILD: frozenset[ChildOrderStatus] = frozenset(
    {ChildOrderStatus.FILLED, ChildOrderStatus.CANCELLED, ChildOrderStatus.REJECTED}
)
"""Child states after which the broker fills nothing more."""


class Resolution(FrozenModel):
    """What became of a timed-out child once its broker was asked to cancel it."""

    child: ChildOrder
    """The child as it now stands (its broker's state when known)."""
    free_quantity: int
    """Quantity certain never to fill at this broker: the most that may go to the next one."""
    reports: tuple[ExecutionReport, ...] = ()
    """The broker's reports of the order, to be tracked like postbacks."""


def resolve_timed_out(child: ChildOrder, cancel: BrokerLookup) -> Resolution:
    """A timed-out child after the cancel-before-cascade (docs/execution-tracking.md).

    Only quantity the broker can no longer fill may cascade, so a late fill can never
    over-fill the order.

    Parameters
    ----------
    child
        The child whose placement timed out.
    cancel
        Its broker's state after we asked it to cancel the order placed under the child's tag.

    Returns
    -------
    Resolution
        ``NOT_FOUND`` (the broker never booked it): the child stays ``TIMED_OUT`` and all of its
        quantity is free. ``FOUND`` in a terminal state (cancelled, rejected, or filled in the
        meantime) with a known fill: ``PLACED`` with the broker's order id, its reports to be
        tracked (they close it); what it did not fill is free. ``FOUND`` still working (the
        cancel is not confirmed), or ``UNKNOWN``: the child stays ``TIMED_OUT`` with the
        broker's order id if any, nothing is free, and polling settles it later.
    """
    if cancel.outcome is LookupOutcome.NOT_FOUND:
        return Resolution(child=child, free_quantity=child.quantity)
    update: dict[str, object] = {"broker_order_id": cancel.broker_order_id or child.broker_order_id}
    confirmed = (
        cancel.outcome is LookupOutcome.FOUND
        and cancel.status in TERMINAL_CHILD
        and cancel.filled_quantity is not None
    )
    if not confirmed:
        why = cancel.reason or "the broker did not confirm the cancel"
        update["status_reason"] = (
            f"{child.status_reason or 'timed out'}; cancel unconfirmed ({why}): {QUANTITY_HELD}"
        )
        return Resolution(child=child.model_copy(update=update), free_quantity=0)
    assert cancel.status is not None
    assert cancel.filled_quantity is not None
    filled = min(cancel.filled_quantity, child.quantity)
    # Stored as working: the broker's reports then move it to its final state and are learned
    # from (a child stored closed would refuse their fills as coming after its close).
    update["status"] = ChildOrderStatus.PLACED
    update["status_reason"] = (
        f"{child.status_reason or 'timed out'}; "
        f"{cancel.status.value.lower()} at the broker with {filled} filled"
    )
    return Resolution(
        child=child.model_copy(update=update),
        free_quantity=child.quantity - filled,
        reports=cancel.reports,
    )


def unfilled_remainder(child: ChildOrder, reports: Sequence[ExecutionReport]) -> int:
    """Quantity of a placed child that its broker ended without filling (0 while it works).

    A child its broker cancelled after a partial fill (the paper broker's synchronous postbacks,
    or an exchange cancelling an IOC remainder) leaves ``quantity - filled`` that may go to the
    next broker; a rejected or fully filled child, or one still working, leaves nothing.
    """
    ended = [r for r in reports if r.status is ExecutionStatus.CANCELLED]
    if not ended:
        return 0
    filled = max(r.filled_quantity for r in reports)
    return max(0, child.quantity - filled)
