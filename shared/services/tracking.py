"""The execution-tracking use case: metrics, store once, learn, tell the trader."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cachetools import TTLCache

from shared.domain.charges import compute_charges
from shared.domain.contracts import MessageType
from shared.domain.errors import InvalidExecutionReportError
from shared.domain.execution import (
    ChildExecutionState,
    ExecutionMetrics,
    ExecutionReport,
    ExecutionStatus,
    FillDelta,
    apply_report,
    compute_execution_metrics,
    float_or_none,
    profile_observation,
)
from shared.domain.models import BrokerProfile, FeeSchedule, Quote
from shared.domain.order_updates import (
    FINAL_ORDER_STATUSES,
    OrderEvent,
    final_event,
    order_update,
    placement_events,
)
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.report_validation import QuarantineReason, ReportViolation, check_report
from shared.domain.settlement import quantity_moved_on
from shared.ports import (
    BrokerRepository,
    ChildStateUpdate,
    ExecutionPlan,
    ExecutionRecord,
    ExecutionRepository,
    Notifier,
    OrderStatusReader,
    ProfileKey,
    QuarantinedReport,
    TrackedExecution,
    UserMessage,
)
from shared.services.profiles import ProfileService

# A child we sent but nobody reported on yet is "open with nothing filled" for the state rule.
_STATE_OF_CHILD = {
    ChildOrderStatus.PENDING: ExecutionStatus.OPEN,
    ChildOrderStatus.PLACED: ExecutionStatus.OPEN,
    ChildOrderStatus.TIMED_OUT: ExecutionStatus.OPEN,
    ChildOrderStatus.PARTIALLY_FILLED: ExecutionStatus.PARTIALLY_FILLED,
    ChildOrderStatus.FILLED: ExecutionStatus.FILLED,
    ChildOrderStatus.CANCELLED: ExecutionStatus.CANCELLED,
    ChildOrderStatus.REJECTED: ExecutionStatus.REJECTED,
}
_CHILD_OF_STATE = {
    ExecutionStatus.OPEN: ChildOrderStatus.PLACED,
    ExecutionStatus.PARTIALLY_FILLED: ChildOrderStatus.PARTIALLY_FILLED,
    ExecutionStatus.FILLED: ChildOrderStatus.FILLED,
    ExecutionStatus.CANCELLED: ChildOrderStatus.CANCELLED,
    ExecutionStatus.REJECTED: ChildOrderStatus.REJECTED,
}


def _advanced(child: ChildOrder, state: ChildStateUpdate) -> ChildOrder:
    # What the child row will say once the state is written: the next report of the batch
    # for this child must see it, as it would after a commit.
    return child.model_copy(
        update={
            "status": state.status,
            "filled_quantity": state.filled_quantity,
            "average_price": state.average_price,
            "broker_order_id": child.broker_order_id or state.broker_order_id,
        }
    )


def _charges(child: ChildOrder, report: ExecutionReport, fees: FeeSchedule) -> Decimal:
    assert report.average_price is not None
    return compute_charges(
        side=child.side,
        product=child.product,
        quantity=report.filled_quantity,
        price=report.average_price,
        fee_schedule=fees,
        exchange=child.exchange,
    ).total


def _execution_record(
    child: ChildOrder,
    report: ExecutionReport,
    delta: FillDelta,
    metrics: ExecutionMetrics,
    charges: Decimal,
) -> ExecutionRecord:
    return ExecutionRecord(
        report_key=report.idempotency_key,
        order_id=child.order_id,
        child_order_id=child.child_order_id,
        user_id=child.user_id,
        broker_id=child.broker_id,
        symbol=child.symbol,
        status=report.status.value,
        filled_quantity=delta.quantity,
        fill_price=delta.price,
        execution_latency_ms=metrics.latency_ms,
        slippage_bps=float_or_none(metrics.slippage_bps),
        price_improvement_bps=float_or_none(metrics.price_improvement_bps),
        fill_rate=float(metrics.fill_rate),
        execution_quality_score=float(metrics.execution_quality_score),
        charges_inr=charges,
        market_conditions=dict(metrics.market_conditions),
    )


CheckReport = Callable[
    [ChildOrder, ExecutionReport, FeeSchedule, datetime], ExecutionPlan | QuarantinedReport
]


@dataclass
class _BatchFold:
    """The fold of one batch (a :data:`~shared.ports.BatchFold`), and what it decided.

    Each report sees its child as every earlier report (of this batch or before) left it; a
    report key seen before is a duplicate.
    """

    reports: Sequence[ExecutionReport]
    child_ids: Sequence[str | None]
    fees: Mapping[str, FeeSchedule]
    now: datetime
    check: CheckReport
    outcomes: list[TrackedExecution] = field(init=False)
    recorded: list[tuple[int, ChildOrder, ExecutionPlan]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outcomes = [TrackedExecution(status="unknown_child")] * len(self.reports)

    def __call__(
        self, children: Mapping[str, ChildOrder], stored: AbstractSet[str]
    ) -> list[ExecutionPlan | QuarantinedReport]:
        current = dict(children)
        seen = set(stored)
        writes: list[ExecutionPlan | QuarantinedReport] = []
        for index, (report, child_id) in enumerate(zip(self.reports, self.child_ids, strict=True)):
            child = current.get(child_id) if child_id else None
            if child is None:
                continue
            if report.idempotency_key in seen:
                self.outcomes[index] = TrackedExecution(status="duplicate", child=child)
                continue
            held = self.check(child, report, self.fees[report.broker_id], self.now)
            writes.append(held)
            if isinstance(held, QuarantinedReport):
                self.outcomes[index] = TrackedExecution(
                    status="quarantined", child=child, reason=held.reason
                )
                continue
            seen.add(report.idempotency_key)
            self.outcomes[index] = TrackedExecution(status="recorded", child=child)
            self.recorded.append((index, child, held))
            if held.child_state is not None:
                current[child.child_order_id] = _advanced(child, held.child_state)
        return writes


class ExecutionTracker:
    """Turns broker reports into execution metrics and better broker profiles.

    Parameters
    ----------
    executions
        Stores a report's effects in one transaction with the child row locked.
    brokers
        Fee schedules for the actual charges of a fill (cached in process for a minute).
    profiles
        Refreshes the cached profile after each learned report.
    notifier
        Pushes ``EXECUTION_UPDATE`` / ``ROUTING_UPDATE`` to the order's owner.
    alpha
        What one outcome discounts of the profile's earlier evidence (``1 - discount``).
    clock
        The current time (the bound on event times in the future).
    orders
        Orders' status after a batch, to push ``ORDER_UPDATE`` when one completes.
    """

    def __init__(
        self,
        *,
        executions: ExecutionRepository,
        brokers: BrokerRepository,
        profiles: ProfileService,
        notifier: Notifier,
        alpha: float,
        clock: Callable[[], datetime],
        orders: OrderStatusReader | None = None,
    ) -> None:
        self._orders = orders
        self._executions = executions
        self._clock = clock
        self._brokers = brokers
        self._profiles = profiles
        self._notifier = notifier
        self._alpha = alpha
        self._fees: TTLCache[str, FeeSchedule] = TTLCache(maxsize=256, ttl=60)

    def track(self, report: ExecutionReport) -> TrackedExecution:
        """Record one report exactly once and learn from it (a batch of one).

        Raises
        ------
        DataUnavailableError
            Postgres is unreachable; the event is retried by its source.
        """
        [outcome] = self.track_batch([report])
        return outcome

    def track_batch(self, reports: Sequence[ExecutionReport]) -> list[TrackedExecution]:
        """Record a batch of reports exactly once each, in order, in one transaction.

        The outcome of every report is the one it would have had alone, in that order: a
        report sees the child as every earlier report (of this batch or before) left it, a
        report key seen before is a duplicate, and the profile learns each observation in
        order. Only the round trips are shared: a handful per batch instead of per report.

        Returns
        -------
        list[TrackedExecution]
            Per report, in order: ``recorded``, ``duplicate`` (already stored: nothing
            changes), ``unknown_child`` (a broker order we did not send: nothing stored) or
            ``quarantined`` (impossible for its child as it now stands, see
            :func:`~shared.domain.report_validation.check_report`: held with its reason in
            the same transaction, never applied).

        Raises
        ------
        DataUnavailableError
            Postgres is unreachable; nothing of the batch is stored, and its source retries it.
        """
        unresolved = {(r.broker_id, r.broker_order_id) for r in reports if r.child_order_id is None}
        found = self._executions.find_child_ids(unresolved)
        child_ids = [
            r.child_order_id or found.get((r.broker_id, r.broker_order_id)) for r in reports
        ]
        batch = _BatchFold(
            reports=reports,
            child_ids=child_ids,
            # Read before the transaction: the fold runs while the batch holds its connection.
            fees={b: self._fee_schedule(b) for b in {r.broker_id for r in reports}},
            now=self._clock(),
            check=self._check,
        )
        if any(child_ids):
            learned = self._executions.track_batch(
                {c for c in child_ids if c},
                {r.idempotency_key for r in reports},
                batch,
                alpha=self._alpha,
            )
            self._after_commit(reports, batch.outcomes, batch.recorded, learned)
        return batch.outcomes

    def _check(
        self, child: ChildOrder, report: ExecutionReport, fees: FeeSchedule, now: datetime
    ) -> ExecutionPlan | QuarantinedReport:
        # The webhook's rule again, against the child as it stands now (an earlier report of
        # this batch, a rejection or a learned broker order id may have changed it).
        violation = check_report(child, report, now=now)
        if violation is None:
            try:
                return self._plan(child, report, fees)
            except InvalidExecutionReportError as exc:
                violation = ReportViolation(
                    reason=QuarantineReason.IMPOSSIBLE_REPORT, field=exc.field, message=exc.reason
                )
        return QuarantinedReport(
            report=report,
            stage="tracking",
            reason=violation.reason.value,
            field=violation.field,
            message=violation.message,
            child_order_id=child.child_order_id,
            order_id=child.order_id,
        )

    def _after_commit(
        self,
        reports: Sequence[ExecutionReport],
        outcomes: list[TrackedExecution],
        recorded: Sequence[tuple[int, ChildOrder, ExecutionPlan]],
        learned: Mapping[ProfileKey, BrokerProfile],
    ) -> None:
        # Pushes and the cache come after the commit: a trader is never told of a fill that a
        # rollback then erased, and a cache entry never runs ahead of Postgres.
        messages: list[UserMessage] = []
        for index, child, plan in recorded:
            profile = learned.get((plan.record.broker_id, plan.record.symbol))
            outcomes[index] = TrackedExecution(status="recorded", child=child, profile=profile)
            messages.append(self._update_message(child, reports[index], plan))
        messages.extend(self._order_updates(recorded))
        self._notifier.notify_users(messages)
        self._profiles.store(learned.values())
        for profile in learned.values():
            self._notifier.notify_symbol_subscribers(
                profile.symbol,
                MessageType.PROFILE_UPDATE,
                profile.model_dump(mode="json", by_alias=True),
            )

    def _plan(self, child: ChildOrder, report: ExecutionReport, fees: FeeSchedule) -> ExecutionPlan:
        state = ChildExecutionState(
            status=_STATE_OF_CHILD[child.status],
            filled_quantity=child.filled_quantity,
            average_price=child.average_price,
        )
        transition = apply_report(state, report)
        quote = (
            Quote(bid=child.arrival_bid, ask=child.arrival_ask)
            if child.arrival_bid is not None and child.arrival_ask is not None
            else None
        )
        metrics = compute_execution_metrics(
            report,
            order_time=child.placed_at or report.event_time,
            expected_price=child.expected_price,
            arrival_quote=quote,
        )
        charges = Decimal(0)
        # Brokerage is per executed order, so charges are booked once, on the report that
        # closes the child, for everything it filled.
        if transition.advanced and report.status.is_terminal and report.filled_quantity > 0:
            charges = _charges(child, report, fees)
        record = _execution_record(child, report, transition.delta, metrics, charges)
        if not transition.advanced:
            return ExecutionPlan(
                record=record, child_state=None, observation=None, observed_at=report.event_time
            )
        new = transition.state
        return ExecutionPlan(
            record=record,
            child_state=ChildStateUpdate(
                child_order_id=child.child_order_id,
                status=_CHILD_OF_STATE[new.status],
                filled_quantity=new.filled_quantity,
                average_price=new.average_price,
                broker_order_id=report.broker_order_id,
            ),
            observation=profile_observation(metrics, report.status),
            observed_at=report.event_time,
        )

    def _fee_schedule(self, broker_id: str) -> FeeSchedule:
        fees = self._fees.get(broker_id)
        if fees is None:
            broker = self._brokers.get(broker_id)
            fees = broker.fee_schedule if broker is not None else FeeSchedule()
            self._fees[broker_id] = fees
        return fees

    def _update_message(
        self, child: ChildOrder, report: ExecutionReport, plan: ExecutionPlan
    ) -> UserMessage:
        record = plan.record
        state = plan.child_state
        data: dict[str, Any] = {
            "orderId": child.order_id,
            "childOrderId": child.child_order_id,
            "brokerId": child.broker_id,
            "brokerOrderId": report.broker_order_id,
            "symbol": child.symbol,
            "side": child.side.value,
            "status": (state.status if state else _CHILD_OF_STATE[report.status]).value,
            "quantity": child.quantity,
            "filledQuantity": state.filled_quantity if state else child.filled_quantity,
            "averagePrice": str(state.average_price) if state and state.average_price else None,
            "fillRate": record.fill_rate,
            "latencyMs": record.execution_latency_ms,
            "slippageBps": record.slippage_bps,
            "priceImprovementBps": record.price_improvement_bps,
            "qualityScore": record.execution_quality_score,
            "chargesInr": str(record.charges_inr),
            # The broker answered after we gave up on it and sent the quantity elsewhere: the
            # trader may now hold more than ordered (the order turns OVERFILLED).
            "lateAfterTimeout": quantity_moved_on(child),
        }
        return (child.user_id, MessageType.EXECUTION_UPDATE, data)

    def _order_updates(
        self, recorded: Sequence[tuple[int, ChildOrder, ExecutionPlan]]
    ) -> list[UserMessage]:
        # ORDER_UPDATE (docs/websocket.md): a child the broker rejected, and an order none of
        # whose children can fill any more, read back after the batch's commit.
        finished = [
            (child.model_copy(update={"status": s.status, "filled_quantity": s.filled_quantity}))
            for _, child, plan in recorded
            if (s := plan.child_state) is not None and s.status.terminal
        ]
        updates: list[UserMessage] = [
            (c.user_id, MessageType.ORDER_UPDATE, order_update(OrderEvent.CHILD_REJECTED, c))
            for c in finished
            if c.status is ChildOrderStatus.REJECTED
        ]
        claimed: dict[str, str] = {}
        if finished and self._orders is not None:
            # Claimed, not just read: a concurrent batch or a repeated report that also sees
            # the order finished finds the claim taken and pushes nothing (exactly once).
            claimed = self._orders.claim_final_statuses(
                {c.order_id for c in finished}, FINAL_ORDER_STATUSES
            )
        done = {c.order_id: c for c in finished if c.order_id in claimed}
        updates += [
            (
                c.user_id,
                MessageType.ORDER_UPDATE,
                order_update(final_event(claimed[o]), c, order_status=claimed[o]),
            )
            for o, c in sorted(done.items())
        ]
        return updates

    def child_placed(self, child: ChildOrder) -> int:
        """Tell the owner of a placed child that it was rejected, timed out or cascaded.

        When the placement left the order final (every child rejected: ``REJECTED``), that is
        announced too, once per order however many children report it and however often
        their events are delivered.
        """
        updates: list[UserMessage] = [
            (child.user_id, MessageType.ORDER_UPDATE, order_update(event, child))
            for event in placement_events(child)
        ]
        if self._orders is not None and child.status.terminal:
            claimed = self._orders.claim_final_statuses({child.order_id}, FINAL_ORDER_STATUSES)
            updates += [
                (
                    child.user_id,
                    MessageType.ORDER_UPDATE,
                    order_update(final_event(status), child, order_status=status),
                )
                for status in claimed.values()
            ]
        return self._notifier.notify_users(updates) if updates else 0

    def order_routed(self, detail: Mapping[str, Any]) -> int:
        """Tell the order's owner how it was routed (``ROUTING_UPDATE``)."""
        data = {k: v for k, v in detail.items() if k not in ("schema_version", "idempotency_key")}
        data["orderId"] = data.pop("order_id", None)
        user_id = str(detail["user_id"])
        data.pop("user_id", None)
        return self._notifier.notify_user(user_id, MessageType.ROUTING_UPDATE, data)
