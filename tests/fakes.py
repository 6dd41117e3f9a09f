"""In-memory fakes of the ports (``shared/ports.py``) for fast unit tests of the services.

Each fake keeps what it was given in plain attributes for a test to inspect, and follows its
port's contract where a service relies on it (a repeated idempotency key stores nothing, a
report key is applied once, a placement is learned once). The bottom of the module checks with
mypy that each one implements its Protocol.

The real adapters are tested against real Postgres, Redis and HTTP servers
(``tests/integration``, ``tests/handlers``, ``tests/brokers``); these fakes only stand in for
them where a service's own policy is under test.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.domain.brokers import BrokerConfig
from shared.domain.contracts import DomainEvent, MessageType
from shared.domain.engine import EngineConfig
from shared.domain.execution import ProfileObservation
from shared.domain.market import MarketStatistics
from shared.domain.models import BrokerProfile, Exchange, OrderRequest, Quote, RoutingDecision
from shared.domain.order_view import OrderView
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.risk import Instrument, default_calendar
from shared.domain.settlement import BrokerLookup, LookupOutcome
from shared.ports import (
    BatchFold,
    BrokerGateway,
    BrokerRepository,
    EventPublisher,
    ExecutionPlan,
    ExecutionRecord,
    ExecutionRepository,
    HeldReport,
    InstrumentRepository,
    MarketData,
    Notifier,
    Observed,
    OrderRepository,
    Outbox,
    PlacementResult,
    ProfileCache,
    ProfileKey,
    ProfileRepository,
    QuarantinedReport,
    QuarantineRepository,
    RateCounter,
    RiskStateReader,
    RoutingInputs,
    StoredOrder,
    TraderRiskState,
    UserMessage,
)
from shared.services.placement import ChildPlacer
from shared.services.profiles import ProfileService
from shared.services.risk import RiskLimits, RiskService
from shared.services.routing import RoutingService
from shared.services.tracking import ExecutionTracker
from tests import factories


class FakeClock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# -- brokers and profiles ------------------------------------------------------------------------


class FakeBrokers:
    """:class:`~shared.ports.BrokerRepository` over a list of broker configurations."""

    def __init__(self, brokers: Sequence[BrokerConfig]) -> None:
        self.brokers = {b.broker_id: b for b in brokers}

    def list_enabled(self) -> list[BrokerConfig]:
        return [b for b in self.brokers.values() if b.enabled]

    def get(self, broker_id: str) -> BrokerConfig | None:
        return self.brokers.get(broker_id)


class FakeRateCounter:
    """:class:`~shared.ports.RateCounter`: a count per broker that a test resets by hand."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hit(self, broker_ids: Sequence[str]) -> None:
        with self._lock:
            self.counts.update(broker_ids)


class FakeProfiles:
    """The profile store and its cache in one: the source of truth and what routing reads.

    Implements :class:`~shared.ports.ProfileRepository`, :class:`~shared.ports.ProfileCache`
    and :class:`~shared.ports.RoutingInputs` (whose rate counts come from ``rates``).
    """

    def __init__(self, profiles: Sequence[BrokerProfile], rates: FakeRateCounter) -> None:
        self.profiles = {(p.broker_id, p.symbol): p for p in profiles}
        self.cached: dict[str, dict[str, BrokerProfile | None]] = {}
        self.rates = rates

    def list_for_symbol(self, symbol: str) -> list[BrokerProfile]:
        return sorted(
            (p for p in self.profiles.values() if p.symbol == symbol), key=lambda p: p.broker_id
        )

    def upsert(self, profile: BrokerProfile) -> None:
        self.profiles[(profile.broker_id, profile.symbol)] = profile

    def day_one(self, symbol: str, template: BrokerProfile) -> list[BrokerProfile]:
        # Every broker the store knows, at the template's figures (the fake has no posteriors).
        brokers = sorted({b for b, _ in self.profiles})
        return [template.model_copy(update={"broker_id": b}) for b in brokers]

    def put_many(self, symbol: str, profiles: Mapping[str, BrokerProfile | None]) -> None:
        self.cached.setdefault(symbol, {}).update(profiles)

    def evict_broker(self, broker_id: str) -> int:
        evicted = 0
        for entries in self.cached.values():
            evicted += entries.pop(broker_id, False) is not False
        return evicted

    def read(
        self, symbol: str, broker_ids: Sequence[str]
    ) -> tuple[dict[str, BrokerProfile | None], dict[str, int]]:
        cached = self.cached.get(symbol, {})
        found = {b: cached[b] for b in broker_ids if b in cached}
        return found, {b: self.rates.counts[b] for b in broker_ids}


class FakeMarket:
    """:class:`~shared.ports.MarketData` from a dict of quotes."""

    def __init__(self, quotes: Mapping[str, Quote] | None = None) -> None:
        self.quotes = dict(quotes or {})

    def quote(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)


# -- risk ----------------------------------------------------------------------------------------


class FakeRiskState:
    """:class:`~shared.ports.RiskStateReader`: no kill switch, a settable open-order count."""

    def __init__(self, open_orders: int = 0) -> None:
        self.open_orders = open_orders

    def read(self, user_id: str) -> TraderRiskState:
        return TraderRiskState(switches=(), open_orders=self.open_orders, limits=None)


class FakeInstruments:
    """:class:`~shared.ports.InstrumentRepository`: every symbol listed with a wide band."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.instruments: dict[tuple[str, Exchange], Instrument] = {}

    def get(self, symbol: str, exchange: Exchange) -> Instrument | None:
        return self.instruments.get((symbol, exchange)) or self._wide(symbol, exchange)

    def upsert(self, instrument: Instrument) -> None:
        self.instruments[(instrument.symbol, instrument.exchange)] = instrument

    def upsert_many(self, instruments: Sequence[Instrument]) -> int:
        changed = 0
        for instrument in instruments:
            key = (instrument.symbol, instrument.exchange)
            old = self.instruments.get(key)
            if old is None or replace(old, updated_at=instrument.updated_at) != instrument:
                changed += 1
                self.instruments[key] = instrument
        return changed

    def _wide(self, symbol: str, exchange: Exchange) -> Instrument:
        now = self._clock()
        return Instrument(
            symbol=symbol,
            exchange=exchange,
            tick_size=Decimal("0.05"),
            lot_size=1,
            freeze_quantity=None,
            band_lower=Decimal(1),
            band_upper=Decimal(1_000_000),
            band_date=date(now.year, now.month, now.day),
            updated_at=now,
        )


# -- brokers' answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One scripted broker answer to a placement."""

    status: ChildOrderStatus = ChildOrderStatus.PLACED
    reason: str | None = None
    response_time_ms: float | None = 5.0
    hang_s: float = 0.0
    """Seconds the adapter hangs before answering (past the placer's deadline: a hung adapter)."""
    before: Callable[[], None] | None = None
    """Run when the broker is asked (e.g. moving a :class:`FakeClock` on)."""


PLACED = Answer()
REJECTED = Answer(ChildOrderStatus.REJECTED, reason="RMS: margin exceeds limit")
TIMED_OUT = Answer(ChildOrderStatus.TIMED_OUT, reason="no answer within 2000 ms")


class FakeGateway:
    """:class:`~shared.ports.BrokerGateway` answering each broker from a script.

    ``script[broker_id]`` is one :class:`Answer` for every order to that broker, or a list used
    in turn (the last one repeats); an unscripted broker accepts.
    """

    def __init__(self, script: Mapping[str, Answer | Sequence[Answer]] | None = None) -> None:
        self.script = dict(script or {})
        self.placed: list[ChildOrder] = []
        self.cancels: dict[str, BrokerLookup] = {}
        """What cancelling a timed-out child finds, per broker (default: nothing booked)."""
        self.cancelled: list[ChildOrder] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        with self._lock:
            asked = sum(1 for c in self.placed if c.broker_id == child.broker_id)
            self.placed.append(child)
            number = next(self._ids)
        answer = self._answer(child.broker_id, asked)
        if answer.before is not None:
            answer.before()
        if answer.hang_s:
            time.sleep(answer.hang_s)
        accepted = answer.status is not ChildOrderStatus.REJECTED
        return PlacementResult(
            child_order_id=child.child_order_id,
            status=answer.status,
            broker_order_id=f"{child.broker_id}-{number}" if accepted else None,
            reason=answer.reason,
            response_time_ms=answer.response_time_ms,
        )

    def cancel_child(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """What a cancel of a timed-out child finds: ``cancels[broker_id]``, else not booked."""
        self.cancelled.append(child)
        return self.cancels.get(child.broker_id, BrokerLookup(outcome=LookupOutcome.NOT_FOUND))

    def _answer(self, broker_id: str, asked: int) -> Answer:
        scripted = self.script.get(broker_id, PLACED)
        if isinstance(scripted, Answer):
            return scripted
        return scripted[min(asked, len(scripted) - 1)]


# -- orders, outbox and bus ----------------------------------------------------------------------


def learn(profile: BrokerProfile, observation: ProfileObservation, at: datetime) -> BrokerProfile:
    """A profile after one observation: a plain count and last-value update.

    The real moving averages are one SQL statement (``shared/adapters/postgres``), tested
    against Postgres; a unit test of a service only needs to see what was learned, and when.
    """
    updates: dict[str, Any] = {
        "sample_count": profile.sample_count + 1,
        "last_updated": max(profile.last_updated, at),
    }
    if observation.response_time_ms is not None:
        updates["response_time_ms"] = observation.response_time_ms
    if observation.error_rate_sample_pct is not None:
        updates["error_rate_percentage"] = observation.error_rate_sample_pct
    return profile.model_copy(update=updates)


@dataclass
class SavedOrder:
    """One order as :class:`FakeOrders` holds it."""

    order: OrderRequest
    request_hash: str
    decision: RoutingDecision
    decision_id: int
    children: dict[str, ChildOrder]
    response: dict[str, Any] | None = None


class FakeOrders:
    """:class:`~shared.ports.OrderRepository` in memory, its events going to ``outbox``.

    A placement observation is learned only while its child is not yet stored as placed, as
    the Postgres repository does, into ``profiles``.
    """

    def __init__(self, outbox: FakeOutbox, profiles: FakeProfiles) -> None:
        self.outbox = outbox
        self.profiles = profiles
        self.orders: dict[str, SavedOrder] = {}
        self.by_key: dict[tuple[str, str], str] = {}
        self.learned: list[Observed] = []
        self.placements_recorded = 0

    def find_by_client_order_id(self, user_id: str, client_order_id: str) -> StoredOrder | None:
        order_id = self.by_key.get((user_id, client_order_id))
        if order_id is None:
            return None
        saved = self.orders[order_id]
        return StoredOrder(
            order_id=order_id,
            user_id=user_id,
            client_order_id=client_order_id,
            request_hash=saved.request_hash,
            response=saved.response,
        )

    def save_routed_order(
        self,
        order: OrderRequest,
        *,
        request_hash: str,
        decision: RoutingDecision,
        children: Sequence[ChildOrder],
        events: Sequence[DomainEvent],
    ) -> int | None:
        key = (order.user_id, order.client_order_id or order.order_id)
        if key in self.by_key:
            return None
        decision_id = len(self.orders) + 1
        self.orders[order.order_id] = SavedOrder(
            order, request_hash, decision, decision_id, {c.child_order_id: c for c in children}
        )
        self.by_key[key] = order.order_id
        self.outbox.add(events)
        return decision_id

    def record_placements(
        self,
        order_id: str,
        children: Sequence[ChildOrder],
        events: Sequence[DomainEvent],
        response: dict[str, Any],
        *,
        observed: Sequence[Observed] = (),
        alpha: float | None = None,
    ) -> dict[ProfileKey, BrokerProfile]:
        self.placements_recorded += 1
        saved = self.orders[order_id]
        placed = {
            c for c, child in saved.children.items() if child.status is not ChildOrderStatus.PENDING
        }
        learned: dict[ProfileKey, BrokerProfile] = {}
        for seen in observed:
            if seen.child_order_id in placed:
                continue  # stored as placed by an earlier recording: learned then
            key = (seen.broker_id, seen.symbol)
            current = learned.get(key) or self.profiles.profiles[key]
            learned[key] = learn(current, seen.observation, seen.observed_at)
            self.learned.append(seen)
        for key, profile in learned.items():
            self.profiles.profiles[key] = profile
        saved.children.update({c.child_order_id: c for c in children})
        saved.response = response
        self.outbox.add(events)
        return learned

    def get_order_view(self, user_id: str, order_id: str) -> OrderView | None:
        saved = self.orders.get(order_id)
        if saved is None or saved.order.user_id != user_id:
            return None
        order = saved.order
        return OrderView.model_validate(
            {
                "order": {
                    **order.model_dump(),
                    "client_order_id": order.client_order_id or order.order_id,
                    "status": "ROUTED",
                    "created_at": factories.NOW,
                    "decision_id": saved.decision_id,
                },
                "allocations": [],
                "childOrders": [c.model_dump() for c in saved.children.values()],
                "executions": [],
            }
        )

    def get_child(self, child_order_id: str) -> ChildOrder | None:
        return next(
            (
                s.children[child_order_id]
                for s in self.orders.values()
                if child_order_id in s.children
            ),
            None,
        )

    def find_child_by_broker_order(self, broker_id: str, broker_order_id: str) -> ChildOrder | None:
        return next(
            (
                c
                for s in self.orders.values()
                for c in s.children.values()
                if c.broker_id == broker_id and c.broker_order_id == broker_order_id
            ),
            None,
        )


class FakeOutbox:
    """:class:`~shared.ports.Outbox`: pending, published and failed events by id."""

    def __init__(self) -> None:
        self.events: dict[UUID, DomainEvent] = {}
        self.published: set[UUID] = set()
        self.failures: Counter[UUID] = Counter()

    @property
    def pending(self) -> list[DomainEvent]:
        return [e for i, e in self.events.items() if i not in self.published]

    def relay(
        self,
        publish: Callable[[Sequence[DomainEvent]], list[DomainEvent]],
        *,
        limit: int = 100,
        min_age_s: float = 10.0,
    ) -> tuple[int, int]:
        batch = self.pending[:limit]
        failed = {e.event_id for e in publish(batch)}
        self.mark_published([e.event_id for e in batch if e.event_id not in failed])
        self.mark_failed(list(failed), "relay failed")
        return len(batch) - len(failed), len(failed)

    def add(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        new = [e for e in events if e.event_id not in self.events]
        self.events.update({e.event_id: e for e in new})
        return new

    def mark_published(self, event_ids: Sequence[UUID]) -> None:
        self.published.update(event_ids)

    def mark_failed(self, event_ids: Sequence[UUID], error: str) -> None:
        self.failures.update(event_ids)


class FakeBus:
    """:class:`~shared.ports.EventPublisher`: keeps what it publishes, or fails when told."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.down = False

    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        if self.down:
            return list(events)
        self.events.extend(events)
        return []


class FakeNotifier:
    """:class:`~shared.ports.Notifier`: keeps every push, as ``(user_or_symbol, type, data)``."""

    def __init__(self) -> None:
        self.to_users: list[UserMessage] = []
        self.to_symbols: list[UserMessage] = []
        self.to_all: list[tuple[MessageType, Mapping[str, Any]]] = []

    def notify_user(self, user_id: str, message_type: MessageType, data: Mapping[str, Any]) -> int:
        self.to_users.append((user_id, message_type, data))
        return 1

    def notify_users(self, messages: Sequence[UserMessage]) -> int:
        self.to_users.extend(messages)
        return len(messages)

    def notify_symbol_subscribers(
        self, symbol: str, message_type: MessageType, data: Mapping[str, Any]
    ) -> int:
        self.to_symbols.append((symbol, message_type, data))
        return 1

    def notify_all(self, message_type: MessageType, data: Mapping[str, Any]) -> int:
        self.to_all.append((message_type, data))
        return 1


# -- executions ----------------------------------------------------------------------------------


@dataclass
class FakeExecutions:
    """:class:`~shared.ports.ExecutionRepository` over a dict of children.

    ``track_batch`` runs the fold on the batch's children and the keys already applied, then
    stores its plans (metrics rows, child states, learned profiles) and hands its quarantined
    reports to ``quarantine``, as the Postgres repository does in one transaction.
    """

    profiles: FakeProfiles
    quarantine: FakeQuarantine
    children: dict[str, ChildOrder] = field(default_factory=dict)
    records: list[ExecutionRecord] = field(default_factory=list)

    def add_child(self, child: ChildOrder) -> None:
        self.children[child.child_order_id] = child

    def find_child_ids(
        self, broker_orders: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        wanted = set(broker_orders)
        return {
            (c.broker_id, c.broker_order_id): c.child_order_id
            for c in self.children.values()
            if c.broker_order_id is not None and (c.broker_id, c.broker_order_id) in wanted
        }

    def track_batch(
        self,
        child_order_ids: Collection[str],
        report_keys: Collection[str],
        fold: BatchFold,
        *,
        alpha: float,
    ) -> dict[ProfileKey, BrokerProfile]:
        locked = {i: self.children[i] for i in child_order_ids if i in self.children}
        learned: dict[ProfileKey, BrokerProfile] = {}
        for write in fold(locked, self.applied_keys(report_keys)):
            if isinstance(write, QuarantinedReport):
                self.quarantine.add(write)
            else:
                self._apply(write, learned)
        return learned

    def _apply(self, plan: ExecutionPlan, learned: dict[ProfileKey, BrokerProfile]) -> None:
        self.records.append(plan.record)
        state = plan.child_state
        if state is not None:
            child = self.children[state.child_order_id]
            self.children[state.child_order_id] = child.model_copy(
                update={
                    "status": state.status,
                    "filled_quantity": state.filled_quantity,
                    "average_price": state.average_price,
                    "broker_order_id": child.broker_order_id or state.broker_order_id,
                }
            )
        if plan.observation is not None:
            key = (plan.record.broker_id, plan.record.symbol)
            current = learned.get(key) or self.profiles.profiles[key]
            learned[key] = learn(current, plan.observation, plan.observed_at)
            self.profiles.profiles[key] = learned[key]

    def applied_keys(self, report_keys: Collection[str]) -> set[str]:
        applied = {r.report_key for r in self.records}
        return {k for k in report_keys if k in applied}


class FakeQuarantine:
    """:class:`~shared.ports.QuarantineRepository`: held reports, newest last."""

    def __init__(self) -> None:
        self.held: list[QuarantinedReport] = []

    def add(self, quarantined: QuarantinedReport) -> bool:
        key = quarantined.report.idempotency_key
        if any(h.report.idempotency_key == key for h in self.held):
            return False
        self.held.append(quarantined)
        return True

    def list_recent(self, *, limit: int, reason: str | None = None) -> list[HeldReport]:
        raise NotImplementedError("no service under unit test lists held reports")


# mypy checks here that every fake implements its port.
_brokers: BrokerRepository = FakeBrokers([])
_rates: RateCounter = FakeRateCounter()
_profile_store: ProfileRepository = FakeProfiles([], FakeRateCounter())
_profile_cache: ProfileCache = FakeProfiles([], FakeRateCounter())
_inputs: RoutingInputs = FakeProfiles([], FakeRateCounter())
_market: MarketData = FakeMarket()
_risk_state: RiskStateReader = FakeRiskState()
_instruments: InstrumentRepository = FakeInstruments(FakeClock(datetime(2026, 1, 1)))
_gateway: BrokerGateway = FakeGateway()
_outbox: Outbox = FakeOutbox()
_orders: OrderRepository = FakeOrders(FakeOutbox(), FakeProfiles([], FakeRateCounter()))
_bus: EventPublisher = FakeBus()
_notifier: Notifier = FakeNotifier()
_quarantine: QuarantineRepository = FakeQuarantine()
_executions: ExecutionRepository = FakeExecutions(
    FakeProfiles([], FakeRateCounter()), FakeQuarantine()
)


# -- services built on the fakes -----------------------------------------------------------------


@dataclass
class RoutingWorld:
    """A :class:`RoutingService` on fakes, and the fakes for a test to script and inspect."""

    clock: FakeClock
    rates: FakeRateCounter
    profiles: FakeProfiles
    gateway: FakeGateway
    outbox: FakeOutbox
    bus: FakeBus
    orders: FakeOrders
    service: RoutingService


def routing_world(
    profiles: Sequence[BrokerProfile],
    *,
    now: datetime,
    script: Mapping[str, Answer | Sequence[Answer]] | None = None,
    quotes: Mapping[str, Quote] | None = None,
    broker_timeout_s: float = 0.2,
    max_profile_age_s: int = 600,
    replay_wait_s: float = 0.05,
    max_market_age_s: float | None = None,
    statistics: Callable[[str], MarketStatistics | None] | None = None,
) -> RoutingWorld:
    """A routing service whose brokers are ``profiles`` (every broker enabled)."""
    clock = FakeClock(now)
    rates = FakeRateCounter()
    store = FakeProfiles(profiles, rates)
    brokers = _brokers_of(profiles)
    market = FakeMarket(quotes)
    outbox = FakeOutbox()
    orders = FakeOrders(outbox, store)
    gateway = FakeGateway(script)
    bus = FakeBus()
    placer = ChildPlacer(
        gateway=gateway,
        rate_counter=rates,
        clock=clock,
        broker_timeout_s=broker_timeout_s,
        max_profile_age_s=max_profile_age_s,
        max_workers=4,
        max_market_age_s=max_market_age_s,
    )
    service = RoutingService(
        profiles=ProfileService(store, store, brokers, inputs=store),
        orders=orders,
        placer=placer,
        publisher=bus,
        outbox=outbox,
        market=market,
        risk=RiskService(
            state=FakeRiskState(),
            instruments=FakeInstruments(clock),
            market=market,
            calendar=default_calendar(),
            limits=RiskLimits(
                max_order_quantity=1_000_000,
                max_order_value_inr=Decimal(10**10),
                max_open_orders=1_000,
            ),
            clock=clock,
            enforce_market_hours=False,
        ),
        clock=clock,
        engine_config=EngineConfig(
            max_profile_age_s=max_profile_age_s, max_market_age_s=max_market_age_s
        ),
        alpha=0.1,
        replay_wait_s=replay_wait_s,
        statistics=statistics,
    )
    return RoutingWorld(clock, rates, store, gateway, outbox, bus, orders, service)


def _brokers_of(profiles: Sequence[BrokerProfile]) -> FakeBrokers:
    fees = {p.broker_id: p.fee_schedule for p in profiles}
    return FakeBrokers([factories.broker(b, fee_schedule=f) for b, f in fees.items()])


@dataclass
class TrackingWorld:
    """An :class:`ExecutionTracker` on fakes, and the fakes for a test to inspect."""

    clock: FakeClock
    profiles: FakeProfiles
    executions: FakeExecutions
    quarantine: FakeQuarantine
    notifier: FakeNotifier
    tracker: ExecutionTracker


def tracking_world(profiles: Sequence[BrokerProfile], *, now: datetime) -> TrackingWorld:
    """An execution tracker whose brokers are ``profiles``; add children to ``executions``."""
    clock = FakeClock(now)
    store = FakeProfiles(profiles, FakeRateCounter())
    brokers = _brokers_of(profiles)
    quarantine = FakeQuarantine()
    executions = FakeExecutions(store, quarantine)
    notifier = FakeNotifier()
    tracker = ExecutionTracker(
        executions=executions,
        brokers=brokers,
        profiles=ProfileService(store, store, brokers, inputs=store),
        notifier=notifier,
        alpha=0.1,
        clock=clock,
    )
    return TrackingWorld(clock, store, executions, quarantine, notifier, tracker)
