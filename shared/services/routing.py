"""The smart-order use case: route, persist, place with brokers (cascading on reject), publish."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared.domain.cascade import new_child
from shared.domain.contracts import DomainEvent, execution_reported_event, order_routed_event
from shared.domain.day_one import market_template, never_priced, with_market
from shared.domain.engine import EngineConfig, decide_route
from shared.domain.errors import (
    InvalidOrderError,
    NoEligibleBrokerError,
    RiskRejectedError,
)
from shared.domain.execution import ExecutionReport
from shared.domain.market import MarketStatistics
from shared.domain.models import BrokerProfile, OrderRequest, Quote, RoutingDecision
from shared.domain.orders import (
    ChildOrder,
    split_into_slices,
)
from shared.domain.quotes import check_client_quote
from shared.domain.settlement import aggregate_status, child_placed_event, parent_status
from shared.ports import (
    EventPublisher,
    MarketData,
    OrderRepository,
    Outbox,
)
from shared.services.placement import ChildPlacer, Placement
from shared.services.profiles import ProfileService
from shared.services.replay import IdempotentReplay, request_fingerprint
from shared.services.risk import RiskService
from shared.services.schemas import (
    AllocationResult,
    Cascade,
    OrderRoutingResult,
    RoutingRecommendation,
    SmartOrderRequest,
)


@dataclass
class RoutingOutcome:
    """A routing result and the figures the handler reports as metrics."""

    result: OrderRoutingResult
    rejects: int = 0
    cascades: int = 0
    decision_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class _Decided:
    decision: RoutingDecision
    profiles: list[BrokerProfile]
    arrival: Quote | None
    """The server's own quote when the order arrived: the only learning reference."""
    counts: dict[str, int]
    """Orders sent to each broker this second, read with the profiles."""


class RoutingService:
    """Routes orders: the ``route_order`` function's one service.

    Parameters
    ----------
    profiles
        Read-through profile cache.
    orders
        The audit trail and child-order store.
    placer
        Places the children with brokers, cascading a failed child's quantity.
    publisher, outbox
        Events are written to the outbox with the state change and published after commit;
        what fails to publish stays for the relay.
    market
        Arrival quotes (1-second in-process cache).
    risk
        Pre-trade risk checks, run before anything else (``docs/risk.md``).
    clock
        Current time (UTC, tz-aware).
    engine_config
        Engine parameters (profile age, minimum child size...).
    alpha
        Weight of one placement outcome (reject, timeout, acknowledgement time) in the
        profile's posteriors: what one outcome discounts (the execution tracker's).
    replay_wait_s
        How long a concurrent duplicate waits for the first request's answer.
    explore
        A new seed for each submitted order's Thompson draw (bounded exploration,
        docs/routing-engine.md "Exploration"); ``None`` routes greedily. ``analyze`` never
        explores: a recommendation is the posterior-mean decision.
    access
        The brokers a trader cannot use whatever the order (no live connection to a real
        broker, no adapter), with the reason; ``None``: every broker is usable.
    statistics
        A symbol's market statistics from a fresh quote (``None`` when stale or unavailable):
        the market figures of day-one profiles for a symbol no broker has a profile for.
        ``None``: such a symbol is unknown.
    """

    def __init__(
        self,
        *,
        profiles: ProfileService,
        orders: OrderRepository,
        placer: ChildPlacer,
        publisher: EventPublisher,
        outbox: Outbox,
        market: MarketData,
        risk: RiskService,
        clock: Callable[[], datetime],
        engine_config: EngineConfig,
        alpha: float,
        replay_wait_s: float = 5.0,
        explore: Callable[[], int] | None = None,
        access: Callable[[str], Mapping[str, str]] | None = None,
        statistics: Callable[[str], MarketStatistics | None] | None = None,
    ) -> None:
        self._profiles = profiles
        self._orders = orders
        self._placer = placer
        self._publisher = publisher
        self._outbox = outbox
        self._market = market
        self._risk = risk
        self._clock = clock
        self._config = engine_config
        self._alpha = alpha
        self._replay = IdempotentReplay(orders, wait_s=replay_wait_s)
        self._explore = explore
        self._access = access
        self._statistics = statistics

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

    def _decide(self, order: OrderRequest, *, explore: bool = False) -> _Decided:
        # The server's quote is read whether or not the client sent one: it is the band a
        # client quote must fit in and the arrival reference the children are measured
        # against. A client quote only ever steers this order's own decision.
        arrival = self._market.quote(order.symbol)
        if order.quote is not None:
            check_client_quote(order.quote, arrival)
        elif arrival is not None:
            order = order.model_copy(update={"quote": arrival})
        profiles, counts = self._profiles.profiles_and_counts(order.symbol)
        if not profiles:
            profiles = self._day_one(order.symbol)
        elif never_priced(profiles):
            profiles = self._priced(order.symbol, profiles)
        if not profiles:  # no profile anywhere and no fresh market data to start one from
            raise InvalidOrderError("symbol", f"unknown symbol {order.symbol}: no broker trades it")
        seed = self._explore() if explore and self._explore is not None else None
        unavailable = self._access(order.user_id) if self._access is not None else {}
        decision = decide_route(
            order,
            profiles,
            now=self._clock(),
            config=self._config,
            recent_order_counts=counts,
            explore_seed=seed,
            unavailable=unavailable,
        )
        return _Decided(decision, profiles, arrival, counts)

    def _day_one(self, symbol: str) -> list[BrokerProfile]:
        # A symbol no broker has a profile for yet: every broker's priors over the market
        # figures of a fresh quote (docs/routing-engine.md, "Day one"); no quote, no profiles.
        stats = self._statistics(symbol) if self._statistics is not None else None
        if stats is None:
            return []
        return self._profiles.day_one(symbol, market_template(stats, self._clock()))

    def _priced(self, symbol: str, profiles: list[BrokerProfile]) -> list[BrokerProfile]:
        # The rows a day-one symbol's first fills created carry no market figures until the
        # statistics refresh reaches the symbol: take them from the fresh quote meanwhile.
        stats = self._statistics(symbol) if self._statistics is not None else None
        if stats is None:
            return profiles
        return [with_market(p, stats) for p in profiles]

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
            decided = self._decide(order, explore=True)
        except (NoEligibleBrokerError, InvalidOrderError, RiskRejectedError):
            # The world may have changed since the first request (its own placements used up a
            # broker's rate limit): a repeat still gets the original answer.
            if self._replay.exists(user_id, client_order_id):
                return self._replayed(user_id, client_order_id, fingerprint)
            raise
        decision_ms = (time.perf_counter() - started) * 1000
        children = self._children(order, decided)
        routed = self._order_routed_event(order, decided.decision)
        decision_id = self._orders.save_routed_order(
            order,
            request_hash=fingerprint,
            decision=decided.decision,
            children=children,
            events=[routed],
        )
        if decision_id is None:  # a concurrent duplicate committed first
            return self._replayed(user_id, client_order_id, fingerprint)
        outcome = self._execute(order, decided, children, decision_id, routed)
        outcome.decision_ms = decision_ms
        return outcome

    def _replayed(self, user_id: str, client_order_id: str, fingerprint: str) -> RoutingOutcome:
        return RoutingOutcome(result=self._replay.answer(user_id, client_order_id, fingerprint))

    def _execute(
        self,
        order: OrderRequest,
        decided: _Decided,
        children: list[ChildOrder],
        decision_id: int,
        routed: DomainEvent,
    ) -> RoutingOutcome:
        """Place the stored children, record what became of them, then publish."""
        placement = self._placer.place(
            order,
            decided.decision,
            children,
            decided.profiles,
            arrival=decided.arrival,
            recent_orders=decided.counts,
        )
        result = routing_result(
            decided.decision,
            decision_id,
            placement.children,
            placement.cascades,
            order_id=order.order_id,
            client_order_id=order.client_order_id or order.order_id,
            quantity=order.quantity,
            rerouted=placement.rerouted,
        )
        events = self._placement_events(placement)
        learned = self._orders.record_placements(
            order.order_id,
            placement.children,
            events,
            result.model_dump(mode="json", by_alias=True),
            observed=placement.observed,
            alpha=self._alpha,
        )
        # After the commit, as the tracker does: the next order sees what this one taught.
        self._profiles.store(learned.values())
        self._publish([routed, *events])
        return RoutingOutcome(
            result=result,
            rejects=placement.rejects,
            cascades=sum(1 for c in placement.cascades if c.to_broker_id is not None),
        )

    @staticmethod
    def _children(order: OrderRequest, decided: _Decided) -> list[ChildOrder]:
        by_broker = {p.broker_id: p for p in decided.profiles}
        children: list[ChildOrder] = []
        for allocation in decided.decision.allocations:
            profile = by_broker[allocation.broker_id]
            slices = split_into_slices(
                allocation.quantity, profile.lot_size, profile.freeze_quantity
            )
            children.extend(
                new_child(
                    order,
                    decided.arrival,
                    child_order_id=f"{order.order_id}-{allocation.priority}-{n}",
                    broker_id=allocation.broker_id,
                    quantity=quantity,
                    expected_price=allocation.expected_execution_price,
                    priority=allocation.priority,
                )
                for n, quantity in enumerate(slices, start=1)
            )
        return children

    @classmethod
    def _placement_events(cls, placement: Placement) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for placed, reports in zip(placement.children, placement.reports, strict=True):
            events.append(child_placed_event(placed, uuid.uuid4()))
            events.extend(cls._execution_event(placed, report) for report in reports)
        return events

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
    rerouted: Mapping[str, int] | None = None,
) -> OrderRoutingResult:
    """The answer to a smart order: the decision with what became of each allocation.

    Used by the routing service after placing, and by the reconciler for an order whose
    placement never happened, so both answer in the same shape. ``rerouted`` is the quantity of
    live children that went on to another broker (a partial fill's remainder), counted once.
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
        status=parent_status(children, quantity, rerouted),
        cascades=tuple(cascades),
    )


def _percentage(quantity: int, total: int) -> Decimal:
    return (Decimal(100) * quantity / total).quantize(Decimal("0.01"))
