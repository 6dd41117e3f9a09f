"""The reconciler: finishes orders whose process died between storing the decision and placing.

``route_order`` stores the order, its decision and its children (``PENDING``) in one
transaction, then places the children and writes the answer. A crash in between (a killed
process, a Lambda timeout) leaves the children ``PENDING``, the order without an answer, and
every retry of its ``clientOrderId`` answering 409 "still being processed". The reconciler runs
on a schedule (every minute in AWS, on a timer in local mode) and, for each order still
unanswered after ``reconcile_after_s``, asks each ``PENDING`` child's broker whether it holds the
order (:func:`shared.domain.settlement.settle_child` decides what follows), then writes the
children, the ``ChildOrderPlaced`` and ``ExecutionReported`` events the normal path would have
written, and the order's final answer, in one transaction. A retry then gets that answer.

The reconciler does not cascade a failed child to another broker: the trader's moment has passed,
and the answer says which quantity never reached the market.

Each run then polls the children of answered orders that no terminal report has settled
(:class:`shared.services.polling.ChildPoller`): a lost postback is recovered from the broker's
order history, through the same event and tracker as a postback.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.domain.contracts import DomainEvent, execution_reported_event
from shared.domain.orders import ChildOrderStatus
from shared.domain.settlement import LookupOutcome, child_placed_event, settle_child
from shared.ports import (
    BrokerOrderLookup,
    EventPublisher,
    Outbox,
    Settlement,
    StuckOrder,
    StuckOrders,
)
from shared.services.polling import ChildPoller, PollReport
from shared.services.routing import routing_result


@dataclass
class ReconcileReport:
    """What one run did (the handler's metrics)."""

    orders: int = 0
    adopted: int = 0
    """Children the broker held: their state was adopted."""
    never_placed: int = 0
    """Children the broker did not know: failed with ``never placed: reconciled``."""
    unconfirmed: int = 0
    """Children whose broker could not answer: timed out, a late report is still taken."""
    polling: PollReport = field(default_factory=PollReport)
    """The run's polling of children without a terminal report (:mod:`shared.services.polling`)."""


class Reconciler:
    """Finishes stuck orders: the ``reconcile`` function's one service.

    Parameters
    ----------
    stuck
        Unanswered orders, locked one at a time (``SKIP LOCKED``).
    brokers
        Looks a child up at its broker by our child order id.
    publisher, outbox
        Events are stored with the settlement and published after commit; what fails to
        publish stays for the relay.
    older_than_s
        The bound: an order is stuck once unanswered this long (``reconcile_after_s``).
    lookup_timeout_s
        Per-broker look-up timeout.
    poller
        Then polls the children no terminal report settled (``None``: stuck orders only).
    """

    def __init__(
        self,
        *,
        stuck: StuckOrders,
        brokers: BrokerOrderLookup,
        publisher: EventPublisher,
        outbox: Outbox,
        older_than_s: float,
        lookup_timeout_s: float,
        poller: ChildPoller | None = None,
    ) -> None:
        self._stuck = stuck
        self._brokers = brokers
        self._publisher = publisher
        self._outbox = outbox
        self._older_than_s = older_than_s
        self._timeout_s = lookup_timeout_s
        self._poller = poller

    def run(self, *, max_orders: int = 100, time_left_s: float = float("inf")) -> ReconcileReport:
        """Settle stuck orders, oldest first, until none is left, ``max_orders`` or the time.

        Then, in the time left, poll one batch of children without a terminal report.

        Parameters
        ----------
        max_orders
            Most orders settled in this run (the next run takes the rest).
        time_left_s
            Stop starting new orders after this many seconds.

        Returns
        -------
        ReconcileReport
            Counts of orders and children settled.
        """
        report = ReconcileReport()
        deadline = time.monotonic() + time_left_s
        while report.orders < max_orders and time.monotonic() < deadline:
            settlement = self._stuck.settle_next(
                older_than_s=self._older_than_s, settle=lambda o: self._settle(o, report)
            )
            if settlement is None:
                break
            report.orders += 1
            self._publish(settlement.events)
        if self._poller is not None:
            report.polling = self._poller.run(time_left_s=max(0.0, deadline - time.monotonic()))
        return report

    def _settle(self, order: StuckOrder, report: ReconcileReport) -> Settlement:
        children = []
        changed = []
        events: list[DomainEvent] = []
        for child in order.children:
            if child.status is not ChildOrderStatus.PENDING:
                children.append(child)
                continue
            lookup = self._brokers.lookup(child, timeout_s=self._timeout_s)
            settled = settle_child(child, lookup)
            if lookup.outcome is LookupOutcome.FOUND:
                report.adopted += 1
            elif lookup.outcome is LookupOutcome.NOT_FOUND:
                report.never_placed += 1
            else:
                report.unconfirmed += 1
            children.append(settled)
            changed.append(settled)
            events.append(child_placed_event(settled, uuid.uuid4()))
            events.extend(
                execution_reported_event(child.order_id, child.user_id, r, uuid.uuid4())
                for r in lookup.reports
            )
        result = routing_result(
            order.decision,
            order.decision_id,
            children,
            (),
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            quantity=order.quantity,
        )
        return Settlement(
            order_id=order.order_id,
            children=tuple(changed),
            events=tuple(events),
            response=result.model_dump(mode="json", by_alias=True),
            status=result.status,
        )

    def _publish(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        failed = self._publisher.publish(events)
        failed_ids = {e.event_id for e in failed}
        self._outbox.mark_published([e.event_id for e in events if e.event_id not in failed_ids])
        if failed_ids:
            self._outbox.mark_failed(list(failed_ids), "publish after commit failed")
