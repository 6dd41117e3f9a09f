"""How child orders settle into a parent's answer, and how a child left PENDING is finished.

The routing service settles children from the brokers' answers as it places them; the reconciler
(:mod:`shared.services.reconcile`) settles the children of an order whose process died between
storing the decision and placing it. Both use these rules, so a reconciled order answers exactly
as if it had been placed then.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal
from uuid import UUID

from shared.domain.contracts import ChildOrderPlacedPayload, DetailType, DomainEvent
from shared.domain.execution import ExecutionReport
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
        ``FOUND``: the broker's state (``PLACED`` when it names none) and order id. ``NOT_FOUND``:
        ``REJECTED`` with :data:`NEVER_PLACED`. ``UNKNOWN``: ``TIMED_OUT`` with
        :data:`UNCONFIRMED`: as for a placement that timed out, a report that arrives later is
        still taken (the tracker's late-fill path), so nothing the broker did is lost.
    """
    if lookup.outcome is LookupOutcome.FOUND:
        status = lookup.status or ChildOrderStatus.PLACED
        if status is ChildOrderStatus.PENDING:
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


def parent_status(children: Sequence[ChildOrder], quantity: int) -> ParentStatus:
    """The order's status: how much of ``quantity`` its children got to the market."""
    live = sum(c.quantity for c in children if c.status not in FAILED)
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
