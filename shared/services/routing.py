"""The smart-order use case: route, persist, place with brokers (cascading on reject), publish."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.domain.contracts import DomainEvent, execution_reported_event, order_routed_event
from shared.domain.engine import EngineConfig, decide_route
from shared.domain.errors import (
    ConflictError,
    InvalidOrderError,
    NoEligibleBrokerError,
    RiskRejectedError,
)
from shared.domain.execution import ExecutionReport
from shared.domain.models import BrokerProfile, OrderRequest, Quote, RoutingDecision
from shared.domain.orders import (
    ChildOrder,
    ChildOrderStatus,
    placement_observation,
    split_into_slices,
)
from shared.domain.quotes import check_client_quote
from shared.domain.settlement import FAILED as _FAILED
from shared.domain.settlement import aggregate_status, child_placed_event, parent_status
from shared.ports import (
    BrokerGateway,
    EventPublisher,
    MarketData,
    Observed,
    OrderRepository,
    Outbox,
    PlacementResult,
    RateCounter,
)
from shared.services.profiles import ProfileService
from shared.services.risk import RiskService
from shared.services.schemas import (
    AllocationResult,
    Cascade,
    OrderRoutingResult,
    RoutingRecommendation,
    SmartOrderRequest,
)


def request_fingerprint(request: SmartOrderRequest) -> str:
    """SHA-256 of the request's canonical JSON: the same key with another body is a conflict."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class RoutingOutcome:
    """A routing result and the figures the handler reports as metrics."""

    result: OrderRoutingResult
    rejects: int = 0
    cascades: int = 0
    decision_ms: float = 0.0


@dataclass
class _Placement:
    children: list[ChildOrder] = field(default_factory=list)
    cascades: list[Cascade] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)
    observed: list[Observed] = field(default_factory=list)
    rejects: int = 0


@dataclass(frozen=True, slots=True)
class _Decided:
    decision: RoutingDecision
    profiles: list[BrokerProfile]
    arrival: Quote | None
    """The server's own quote when the order arrived: the only learning reference."""


class RoutingService:
    """Routes orders: the ``route_order`` function's one service.

    Parameters
    ----------
    profiles
        Read-through profile cache.
    orders
        The audit trail and child-order store.
    gateway
        Sends child orders to brokers.
    publisher, outbox
        Events are written to the outbox with the state change and published after commit;
        what fails to publish stays for the relay.
    market
        Arrival quotes (1-second in-process cache).
    rate_counter
        Orders sent per broker in the current second (brokers' API rate limits).
    risk
        Pre-trade risk checks, run before anything else (``docs/risk.md``).
    clock
        Current time (UTC, tz-aware).
    engine_config
        Engine parameters (profile age, minimum child size...).
    broker_timeout_s
        Per-broker placement timeout, after which the quantity cascades.
    alpha
        Weight of one placement outcome (reject, timeout, acknowledgement time) in the
        profile's moving averages: the execution tracker's weight.
    replay_wait_s
        How long a concurrent duplicate waits for the first request's answer.
    """

    def __init__(
        self,
        *,
        profiles: ProfileService,
        orders: OrderRepository,
        gateway: BrokerGateway,
        publisher: EventPublisher,
        outbox: Outbox,
        market: MarketData,
        rate_counter: RateCounter,
        risk: RiskService,
        clock: Callable[[], datetime],
        engine_config: EngineConfig,
        broker_timeout_s: float,
        alpha: float,
        replay_wait_s: float = 5.0,
    ) -> None:
        self._profiles = profiles
        self._orders = orders
        self._gateway = gateway
        self._publisher = publisher
        self._outbox = outbox
        self._market = market
        self._rates = rate_counter
        self._risk = risk
        self._clock = clock
        self._config = engine_config
        self._timeout_s = broker_timeout_s
        self._alpha = alpha
        self._replay_wait_s = replay_wait_s
        # Long-lived: a container places orders for its whole life, and starting threads per
        # request would cost more than placing a paper order.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="place")

    # -- analyze -----------------------------------------------------------------------------

    def decide(self, order: OrderRequest) -> tuple[RoutingDecision, list[BrokerProfile]]:
        """Score and allocate ``order`` against current profiles, quotes and rate limits.

        Raises
        ------
        NoEligibleBrokerError, InvalidOrderError
            From the engine; ``InvalidOrderError`` on ``quote`` too when the client's quote is
            malformed or outside the band around the server's market reference.
        DataUnavailableError
            When profiles are needed from Postgres and it cannot be reached.
        """
        decided = self._decide(order)
        return decided.decision, decided.profiles

    def _decide(self, order: OrderRequest) -> _Decided:
        # The server's quote is read whether or not the client sent one: it is the band a
        # client quote must fit in and the arrival reference the children are measured
        # against. A client quote only ever steers this order's own decision.
        arrival = self._market.quote(order.symbol)
        if order.quote is not None:
            check_client_quote(order.quote, arrival)
        elif arrival is not None:
            order = order.model_copy(update={"quote": arrival})
        profiles, counts = self._profiles.profiles_and_counts(order.symbol)
        if not profiles:  # the symbols the router knows are those its brokers have profiles for
            raise InvalidOrderError("symbol", f"unknown symbol {order.symbol}: no broker trades it")
        decision = decide_route(
            order, profiles, now=self._clock(), config=self._config, recent_order_counts=counts
        )
        return _Decided(decision, profiles, arrival)

    def analyze(self, order: OrderRequest) -> RoutingRecommendation:
        """The decision for ``order`` without storing anything or calling a broker."""
        self._risk.check(order)
        decision, _ = self.decide(order)
        return RoutingRecommendation.from_decision(decision)

    # -- submit ------------------------------------------------------------------------------

    def submit(
        self, request: SmartOrderRequest, *, user_id: str, key: str | None
    ) -> RoutingOutcome:
        """Route and execute an order, exactly once per ``(user_id, key)``.

        Parameters
        ----------
        request
            The validated body.
        user_id
            The authenticated trader.
        key
            ``clientOrderId`` or the ``Idempotency-Key`` header; ``None`` makes one up.

        Raises
        ------
        ConflictError
            The key was used with another body, or the first request is still being processed.
        RiskRejectedError, NoEligibleBrokerError, InvalidOrderError, DataUnavailableError
            Nothing is stored then.
        """
        fingerprint = request_fingerprint(request)
        order_id = f"ord-{uuid.uuid4().hex}"
        client_order_id = key or order_id
        # No look-up first: the unique key in the insert below is the check, and a repeat finds
        # its original answer through the replay path. A retry costs one extra decision, which
        # is cheaper than a look-up on every order.
        order = request.to_order(
            order_id=order_id, user_id=user_id, client_order_id=client_order_id
        )
        started = time.perf_counter()
        try:
            self._risk.check(order)
            decided = self._decide(order)
        except (NoEligibleBrokerError, InvalidOrderError, RiskRejectedError):
            # The world may have changed since the first request (its own placements used up a
            # broker's rate limit): a repeat still gets the original answer.
            if self._orders.find_by_client_order_id(user_id, client_order_id) is not None:
                return self._replay(user_id, client_order_id, fingerprint)
            raise
        decision_ms = (time.perf_counter() - started) * 1000
        decision, profiles, arrival = decided.decision, decided.profiles, decided.arrival
        children = self._children(order, decision, profiles, arrival)
        routed = self._order_routed_event(order, decision)
        decision_id = self._orders.save_routed_order(
            order, request_hash=fingerprint, decision=decision, children=children, events=[routed]
        )
        if decision_id is None:  # a concurrent duplicate committed first
            return self._replay(user_id, client_order_id, fingerprint)
        placement = self._place(order, decision, children, profiles, arrival)
        result = routing_result(
            decision,
            decision_id,
            placement.children,
            placement.cascades,
            order_id=order.order_id,
            client_order_id=order.client_order_id or order.order_id,
            quantity=order.quantity,
        )
        learned = self._orders.record_placements(
            order.order_id,
            placement.children,
            placement.events,
            result.model_dump(mode="json", by_alias=True),
            observed=placement.observed,
            alpha=self._alpha,
        )
        # After the commit, as the tracker does: the next order sees what this one taught.
        self._profiles.store(learned.values())
        self._publish([routed, *placement.events])
        return RoutingOutcome(
            result=result,
            rejects=placement.rejects,
            cascades=sum(1 for c in placement.cascades if c.to_broker_id is not None),
            decision_ms=decision_ms,
        )

    def _replay(self, user_id: str, client_order_id: str, fingerprint: str) -> RoutingOutcome:
        deadline = time.monotonic() + self._replay_wait_s
        while True:
            stored = self._orders.find_by_client_order_id(user_id, client_order_id)
            if stored is None:  # pragma: no cover - a stored order is never deleted
                raise ConflictError("the order of this key disappeared")
            if stored.request_hash != fingerprint:
                raise ConflictError(
                    "clientOrderId was already used for a different order; use a new key"
                )
            if stored.response is not None:
                result = OrderRoutingResult.model_validate(stored.response)
                return RoutingOutcome(result=result.model_copy(update={"replayed": True}))
            if time.monotonic() >= deadline:
                raise ConflictError("the first request with this key is still being processed")
            time.sleep(0.02)

    def _children(
        self,
        order: OrderRequest,
        decision: RoutingDecision,
        profiles: Sequence[BrokerProfile],
        arrival: Quote | None,
    ) -> list[ChildOrder]:
        by_broker = {p.broker_id: p for p in profiles}
        children: list[ChildOrder] = []
        for allocation in decision.allocations:
            profile = by_broker[allocation.broker_id]
            slices = split_into_slices(
                allocation.quantity, profile.lot_size, profile.freeze_quantity
            )
            for n, quantity in enumerate(slices, start=1):
                children.append(
                    self._child(
                        order,
                        arrival,
                        child_order_id=f"{order.order_id}-{allocation.priority}-{n}",
                        broker_id=allocation.broker_id,
                        quantity=quantity,
                        expected_price=allocation.expected_execution_price,
                        priority=allocation.priority,
                    )
                )
        return children

    @staticmethod
    def _child(order: OrderRequest, arrival: Quote | None, **values: Any) -> ChildOrder:
        # The server's arrival quote, never the client's: executions are measured against it
        # and what they teach is shared by every trader.
        return ChildOrder(
            order_id=order.order_id,
            user_id=order.user_id,
            symbol=order.symbol,
            exchange=order.exchange,
            side=order.side,
            order_type=order.order_type,
            product=order.product,
            limit_price=order.limit_price,
            trigger_price=order.trigger_price,
            arrival_bid=arrival.bid if arrival else None,
            arrival_ask=arrival.ask if arrival else None,
            **values,
        )

    def _place(
        self,
        order: OrderRequest,
        decision: RoutingDecision,
        children: list[ChildOrder],
        profiles: Sequence[BrokerProfile],
        arrival: Quote | None,
    ) -> _Placement:
        """Place children in parallel; cascade rejected or timed-out quantity to the next broker.

        Every answer is also an observation of its broker (acknowledgement time; a reject or
        timeout is an error sample), learned when the placements are recorded.
        """
        placement = _Placement()
        failed_brokers: set[str] = set()
        ranked = [a.broker_id for a in decision.allocations] + list(decision.fallback_broker_ids)
        by_broker = {p.broker_id: p for p in profiles}
        pending = children
        cascade_no = 0
        while pending:
            next_round: list[ChildOrder] = []
            for child, outcome, ack_ms in self._place_parallel(pending):
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
                placed = child.model_copy(
                    update={
                        "status": outcome.status,
                        "broker_order_id": outcome.broker_order_id,
                        "status_reason": outcome.reason,
                    }
                )
                placement.children.append(placed)
                placement.events.append(child_placed_event(placed, uuid.uuid4()))
                placement.events.extend(
                    self._execution_event(placed, report) for report in outcome.reports
                )
                if outcome.status not in _FAILED:
                    continue
                placement.rejects += 1
                failed_brokers.add(child.broker_id)
                target = next(
                    (
                        b
                        for b in ranked
                        if b not in failed_brokers and _can_take(by_broker.get(b), child.quantity)
                    ),
                    None,
                )
                placement.cascades.append(
                    Cascade(
                        from_broker_id=child.broker_id,
                        to_broker_id=target,
                        quantity=child.quantity,
                        reason=outcome.reason or outcome.status.value,
                    )
                )
                if target is None:
                    continue
                profile = by_broker[target]
                for quantity in split_into_slices(
                    child.quantity, profile.lot_size, profile.freeze_quantity
                ):
                    cascade_no += 1
                    next_round.append(
                        self._child(
                            order,
                            arrival,
                            child_order_id=f"{order.order_id}-c{cascade_no}",
                            broker_id=target,
                            quantity=quantity,
                            expected_price=child.expected_price,
                            priority=child.priority,
                            attempt=child.attempt + 1,
                            cascaded_from=child.broker_id,
                        )
                    )
            pending = next_round
        return placement

    def _place_parallel(
        self, children: Sequence[ChildOrder]
    ) -> list[tuple[ChildOrder, PlacementResult, float]]:
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

    def _publish(self, events: Sequence[DomainEvent]) -> None:
        failed = self._publisher.publish(events)
        failed_ids = {e.event_id for e in failed}
        self._outbox.mark_published([e.event_id for e in events if e.event_id not in failed_ids])
        if failed_ids:
            self._outbox.mark_failed(list(failed_ids), "publish after commit failed")

    # -- events ------------------------------------------------------------------------------

    @staticmethod
    def _order_routed_event(order: OrderRequest, decision: RoutingDecision) -> DomainEvent:
        return order_routed_event(order, decision, uuid.uuid4())

    @staticmethod
    def _execution_event(child: ChildOrder, report: ExecutionReport) -> DomainEvent:
        return execution_reported_event(child.order_id, child.user_id, report, uuid.uuid4())


def routing_result(
    decision: RoutingDecision,
    decision_id: int,
    children: Sequence[ChildOrder],
    cascades: Sequence[Cascade],
    *,
    order_id: str,
    client_order_id: str,
    quantity: int,
) -> OrderRoutingResult:
    """The answer to a smart order: the decision with what became of each allocation.

    Used by the routing service after placing, and by the reconciler for an order whose
    placement never happened, so both answer in the same shape.
    """
    allocations: list[AllocationResult] = []
    for a in decision.allocations:
        kids = [c for c in children if c.broker_id == a.broker_id and c.attempt == 1]
        allocations.append(
            AllocationResult.planned(
                a,
                child_order_id=kids[0].child_order_id if kids else None,
                child_order_ids=tuple(c.child_order_id for c in kids),
                status=aggregate_status(kids),
                reason=next((c.status_reason for c in kids if c.status_reason), None),
            )
        )
    cascaded = [c for c in children if c.cascaded_from is not None]
    for child in cascaded:
        allocations.append(
            AllocationResult(
                broker_id=child.broker_id,
                quantity=child.quantity,
                allocation_percentage=_percentage(child.quantity, quantity),
                expected_execution_price=child.expected_price or Decimal(0),
                priority=child.priority,
                child_order_id=child.child_order_id,
                child_order_ids=(child.child_order_id,),
                status=aggregate_status([child]),
                cascaded_from=child.cascaded_from,
                reason=child.status_reason,
            )
        )
    base = RoutingRecommendation.from_decision(decision)
    return OrderRoutingResult(
        **{k: v for k, v in base if k != "allocations"},
        allocations=tuple(allocations),
        order_id=order_id,
        decision_id=decision_id,
        client_order_id=client_order_id,
        status=parent_status(children, quantity),
        cascades=tuple(cascades),
    )


def _can_take(profile: BrokerProfile | None, quantity: int) -> bool:
    if profile is None or quantity % profile.lot_size:
        return False
    if profile.min_order_size is not None and quantity < profile.min_order_size:
        return False
    return profile.max_order_size is None or quantity <= profile.max_order_size


def _percentage(quantity: int, total: int) -> Decimal:
    return (Decimal(100) * quantity / total).quantize(Decimal("0.01"))
