"""Placing an order's children with brokers: in parallel, bounded in time, cascading on failure."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime

from shared.domain.cascade import choose_cascade_target, new_child
from shared.domain.execution import ExecutionReport
from shared.domain.models import BrokerProfile, OrderRequest, Quote, RoutingDecision
from shared.domain.orders import ChildOrder, ChildOrderStatus, placement_observation
from shared.domain.orders import split_into_slices as _slices
from shared.domain.settlement import FAILED as _FAILED
from shared.domain.settlement import (
    BrokerLookup,
    LookupOutcome,
    Resolution,
    resolve_timed_out,
    unfilled_remainder,
)
from shared.ports import (
    BrokerGateway,
    BrokerOrderCanceller,
    Observed,
    PlacementResult,
    RateCounter,
)
from shared.services.schemas import Cascade, SkippedBroker


@dataclass
class Placement:
    """What placing an order's children produced, cascaded children included."""

    children: list[ChildOrder] = field(default_factory=list)
    """Every child sent, in the order the answers were handled, with its outcome."""
    reports: list[tuple[ExecutionReport, ...]] = field(default_factory=list)
    """Per child of ``children``: the reports its broker gave with the answer."""
    cascades: list[Cascade] = field(default_factory=list)
    observed: list[Observed] = field(default_factory=list)
    """Placement observations (acknowledgement times, rejects, timeouts) to learn once."""
    rejects: int = 0
    rerouted: dict[str, int] = field(default_factory=dict)
    """Quantity of a child still counted live that went to another broker, by child order id
    (a partial fill's remainder, a cancelled timed-out child): it counts once, where it went."""


_Answer = tuple[ChildOrder, PlacementResult, float]
"""A child as sent, its broker's answer and the acknowledgement time in ms."""


@dataclass
class _Run:
    """One order's placement in progress."""

    order: OrderRequest
    arrival: Quote | None
    profiles: Mapping[str, BrokerProfile]
    ranked: list[str]
    recent_orders: Mapping[str, int]
    placement: Placement = field(default_factory=Placement)
    failed: set[str] = field(default_factory=set)
    sent: Counter[str] = field(default_factory=Counter)
    """Children of this order sent or about to be sent, per broker."""
    cascade_no: int = 0

    def orders_this_second(self) -> dict[str, int]:
        # The counts read for the decision plus what this order has sent since: placement
        # takes well under a second, and re-reading Redis mid-placement could fail after
        # children are already with brokers.
        return {b: self.recent_orders.get(b, 0) + self.sent[b] for b in self.ranked}


class ChildPlacer:
    """Sends child orders to brokers and cascades a rejected or timed-out child's quantity.

    Parameters
    ----------
    gateway
        Sends one child order to its broker.
    rate_counter
        Counts the orders sent per broker this second (brokers' API rate limits).
    clock
        Current time (UTC, tz-aware): ``placed_at`` and profile staleness at a cascade.
    broker_timeout_s
        Per-broker placement timeout, after which the quantity cascades.
    max_profile_age_s
        The engine's staleness bound, applied again to a cascade target.
    max_workers
        Placement threads of the process.
    max_market_age_s
        The engine's bound on the age of market figures, applied again to a cascade target.
    """

    def __init__(
        self,
        *,
        gateway: BrokerGateway,
        rate_counter: RateCounter,
        clock: Callable[[], datetime],
        broker_timeout_s: float,
        max_profile_age_s: int,
        max_workers: int = 8,
        max_market_age_s: float | None = None,
    ) -> None:
        self._gateway = gateway
        self._rates = rate_counter
        self._clock = clock
        self._timeout_s = broker_timeout_s
        self._max_profile_age_s = max_profile_age_s
        self._max_market_age_s = max_market_age_s
        # Long-lived: a container places orders for its whole life, and starting threads per
        # request would cost more than placing a paper order.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="place")

    def place(
        self,
        order: OrderRequest,
        decision: RoutingDecision,
        children: Sequence[ChildOrder],
        profiles: Sequence[BrokerProfile],
        *,
        arrival: Quote | None,
        recent_orders: Mapping[str, int],
    ) -> Placement:
        """Place children in parallel; cascade rejected or timed-out quantity to the next broker.

        The target of a cascade is chosen by
        :func:`~shared.domain.cascade.choose_cascade_target` among the allocated brokers by
        priority, then the decision's fallbacks. Every answer is also an observation of its
        broker (acknowledgement time; a reject or timeout is an error sample), returned to be
        learned when the placements are recorded.

        Parameters
        ----------
        order, decision
            The routed order and its decision.
        children
            The allocations' children, as stored.
        profiles
            The profiles the decision was made with.
        arrival
            The server's arrival quote, copied onto cascaded children.
        recent_orders
            Orders sent to each broker this second when the decision was made.
        """
        run = _Run(
            order=order,
            arrival=arrival,
            profiles={p.broker_id: p for p in profiles},
            ranked=[a.broker_id for a in decision.allocations] + list(decision.fallback_broker_ids),
            recent_orders=recent_orders,
        )
        pending = list(children)
        run.sent.update(c.broker_id for c in pending)
        while pending:
            pending = self._round(run, pending)
        return run.placement

    def _round(self, run: _Run, pending: Sequence[ChildOrder]) -> list[ChildOrder]:
        """Place ``pending`` at once; return the children their freed quantity cascades to.

        A timed-out child is first cancelled at its broker (:meth:`_resolve`): only quantity
        the broker can no longer fill moves on, so a late fill cannot over-fill the order.
        """
        answers = self._place_parallel(pending)
        timed_out = [
            c.model_copy(
                update={
                    "status": o.status,
                    "broker_order_id": o.broker_order_id,
                    "status_reason": o.reason,
                }
            )
            for c, o, _ in answers
            if o.status is ChildOrderStatus.TIMED_OUT
        ]
        resolved = self._resolve(timed_out)
        next_round: list[ChildOrder] = []
        for child, outcome, ack_ms in answers:
            free, why = self._freed(run, (child, outcome, ack_ms), resolved)
            if free > 0:
                next_round.extend(self._cascade(run, child, free, why))
            elif run.placement.children[-1].status is ChildOrderStatus.TIMED_OUT:
                # Cancel unconfirmed: the quantity stays with this broker until polling settles it.
                self._no_cascade(run, child, why)
        return next_round

    def _freed(
        self, run: _Run, answer: _Answer, resolved: Mapping[str, Resolution]
    ) -> tuple[int, str]:
        """Record one answer; return the quantity free to cascade and why."""
        child, outcome, _ = answer
        resolution = resolved.get(child.child_order_id)
        if resolution is not None:
            # Learned as a timeout (the broker did not answer in time) whatever the cancel found.
            self._record(run.placement, answer, resolution)
            return resolution.free_quantity, resolution.child.status_reason or "timed out"
        self._record(run.placement, answer, None)
        if outcome.status in _FAILED:
            return child.quantity, outcome.reason or outcome.status.value
        remainder = unfilled_remainder(child, outcome.reports)
        return remainder, "partial fill: unfilled remainder re-routed"

    def _resolve(self, timed_out: Sequence[ChildOrder]) -> dict[str, Resolution]:
        """Cancel the timed-out children at their brokers, in parallel, and settle each."""
        if not timed_out:
            return {}
        gateway = self._gateway
        if not isinstance(gateway, BrokerOrderCanceller):
            unknown = BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="no order cancel")
            return {c.child_order_id: resolve_timed_out(c, unknown) for c in timed_out}
        futures = [
            self._pool.submit(gateway.cancel_child, c, timeout_s=self._timeout_s) for c in timed_out
        ]
        deadline = time.monotonic() + self._timeout_s * 2 + 0.5
        resolved: dict[str, Resolution] = {}
        for child, future in zip(timed_out, futures, strict=True):
            try:
                answer = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                answer = BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="cancel hung")
            resolved[child.child_order_id] = resolve_timed_out(child, answer)
        return resolved

    def _record(self, placement: Placement, answer: _Answer, resolution: Resolution | None) -> None:
        child, outcome, ack_ms = answer
        observation = placement_observation(outcome.status, ack_ms)
        if observation is not None:
            placement.observed.append(
                Observed(
                    child.broker_id,
                    child.symbol,
                    observation,
                    child.placed_at or self._clock(),
                    child.child_order_id,
                )
            )
        if resolution is not None:
            placement.children.append(resolution.child)
            placement.reports.append(resolution.reports)
            return
        placement.children.append(
            child.model_copy(
                update={
                    "status": outcome.status,
                    "broker_order_id": outcome.broker_order_id,
                    "status_reason": outcome.reason,
                }
            )
        )
        placement.reports.append(outcome.reports)

    def _no_cascade(self, run: _Run, child: ChildOrder, reason: str) -> None:
        run.placement.rejects += 1
        run.placement.cascades.append(
            Cascade(
                from_broker_id=child.broker_id,
                to_broker_id=None,
                quantity=child.quantity,
                reason=reason,
            )
        )

    def _cascade(
        self, run: _Run, child: ChildOrder, quantity: int, reason: str
    ) -> list[ChildOrder]:
        """Send ``quantity`` of ``child`` (failed, or ended with an unfilled remainder) onwards."""
        live = run.placement.children[-1].status not in _FAILED
        if not live:
            run.placement.rejects += 1
        run.failed.add(child.broker_id)
        target = choose_cascade_target(
            run.order,
            quantity,
            run.ranked,
            run.profiles,
            failed=run.failed,
            now=self._clock(),
            max_profile_age_s=self._max_profile_age_s,
            recent_orders=run.orders_this_second(),
            max_market_age_s=self._max_market_age_s,
        )
        run.placement.cascades.append(
            Cascade(
                from_broker_id=child.broker_id,
                to_broker_id=target.broker_id,
                quantity=quantity,
                reason=reason,
                skipped=tuple(SkippedBroker(broker_id=b, reason=r) for b, r in target.skipped),
            )
        )
        if target.broker_id is None:
            return []
        if live:
            # The child stays live for what it filled; the rest counts where it goes.
            run.placement.rerouted[child.child_order_id] = quantity
        profile = run.profiles[target.broker_id]
        cascaded: list[ChildOrder] = []
        for sliced in _slices(quantity, profile.lot_size, profile.freeze_quantity):
            run.cascade_no += 1
            cascaded.append(
                new_child(
                    run.order,
                    run.arrival,
                    child_order_id=f"{run.order.order_id}-c{run.cascade_no}",
                    broker_id=target.broker_id,
                    quantity=sliced,
                    expected_price=child.expected_price,
                    priority=child.priority,
                    attempt=child.attempt + 1,
                    cascaded_from=child.broker_id,
                )
            )
        # Counted now, not when the next round sends them: a second failure of this round must
        # see them against the target's rate limit.
        run.sent[target.broker_id] += len(cascaded)
        return cascaded

    def _place_parallel(self, children: Sequence[ChildOrder]) -> list[_Answer]:
        """Send children at once; the per-broker timeout bounds the wait for each answer.

        Returns each child (stamped ``placed_at``), its result and its acknowledgement time in
        ms: the adapter's own figure when it gives one (it times the broker's API call, or
        simulates it), else the time the call took here; the bound for a hung adapter.
        """
        stamped = [c.model_copy(update={"placed_at": self._clock()}) for c in children]
        self._rates.hit([c.broker_id for c in stamped])
        futures = [self._pool.submit(self._timed_place, child) for child in stamped]
        # Adapters enforce the timeout themselves; this deadline only catches one that hangs,
        # whose thread is then abandoned rather than waited for.
        deadline = time.monotonic() + self._timeout_s + 0.5
        results = []
        for child, future in zip(stamped, futures, strict=True):
            try:
                result, elapsed_ms = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                result = PlacementResult(
                    child_order_id=child.child_order_id,
                    status=ChildOrderStatus.TIMED_OUT,
                    reason="broker adapter did not answer in time",
                )
                elapsed_ms = self._timeout_s * 1000
            ack_ms = result.response_time_ms if result.response_time_ms is not None else elapsed_ms
            results.append((child, result, ack_ms))
        return results

    def _timed_place(self, child: ChildOrder) -> tuple[PlacementResult, float]:
        started = time.perf_counter()
        result = self._gateway.place(child, timeout_s=self._timeout_s)
        return result, (time.perf_counter() - started) * 1000
