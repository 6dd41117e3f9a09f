"""Ports: what the services need from the outside world, as small Protocols.

Adapters in ``shared/adapters`` implement them by technology (Postgres, Redis, EventBridge, API
Gateway); tests may pass in-memory fakes that implement the same Protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from shared.domain.admin import (
    AuditEntry,
    BrokerAdminView,
    BrokerStatusMessage,
    BrokerUpdate,
    StatusChange,
)
from shared.domain.alarms import AlarmSummary
from shared.domain.analytics import ExecutionAnalytics
from shared.domain.broker_links import BrokerLink, LinkStatus
from shared.domain.broker_orders import (
    BrokerAccount,
    BrokerOrderChange,
    BrokerOrderRequest,
    BrokerOrderState,
)
from shared.domain.brokers import BrokerConfig
from shared.domain.connections import ConnectionRecord
from shared.domain.contracts import DomainEvent, MessageType
from shared.domain.execution import ExecutionReport, ProfileObservation
from shared.domain.history import HistoryQuery
from shared.domain.identity import TraderIdentity
from shared.domain.market import MarketQuote, MarketStatistics
from shared.domain.models import BrokerProfile, Exchange, OrderRequest, Quote, RoutingDecision
from shared.domain.order_view import OrderView
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.risk import Instrument, KillSwitch
from shared.domain.settlement import BrokerLookup, quantity_moved_on


class BrokerRepository(Protocol):
    """Broker configuration (the ``brokers`` table)."""

    def list_enabled(self) -> list[BrokerConfig]:
        """Every enabled broker."""
        ...

    def get(self, broker_id: str) -> BrokerConfig | None:
        """One broker, enabled or not; ``None`` when unknown."""
        ...


class ProfileRepository(Protocol):
    """Broker execution profiles in the source of truth."""

    def list_for_symbol(self, symbol: str) -> list[BrokerProfile]:
        """Profiles of every enabled broker for ``symbol``, joined with broker configuration."""
        ...

    def day_one(self, symbol: str, template: BrokerProfile) -> list[BrokerProfile]:
        """Every enabled broker's profile for a symbol none has one for: priors over ``template``.

        ``template`` carries the symbol's market figures (docs/routing-engine.md, "Day one").
        """
        ...

    def upsert(self, profile: BrokerProfile) -> None:
        """Create or replace the profile of ``(profile.broker_id, profile.symbol)``."""
        ...


class ProfileCache(Protocol):
    """Writes to the profile cache (read with :class:`RoutingInputs`).

    Failures raise ``CacheUnavailableError``.
    """

    def put_many(self, symbol: str, profiles: Mapping[str, BrokerProfile | None]) -> None:
        """Cache profiles (``None`` remembers that a broker has no profile for the symbol)."""
        ...

    def evict_broker(self, broker_id: str) -> int:
        """Forget every cached profile of ``broker_id`` (its status changed); return how many."""
        ...


class RoutingInputs(Protocol):
    """What routing reads from the cache for one order, in one round trip."""

    def read(
        self, symbol: str, broker_ids: Sequence[str]
    ) -> tuple[dict[str, BrokerProfile | None], dict[str, int]]:
        """Cached profiles and this second's order counts of ``broker_ids``.

        A broker without a cache entry is absent from the profiles; one cached as ``None`` is
        known to have no profile for the symbol.

        Raises ``CacheUnavailableError`` when the cache cannot be reached.
        """
        ...


class MarketData(Protocol):
    """Arrival quotes."""

    def quote(self, symbol: str) -> Quote | None:
        """The current quote of ``symbol``, or ``None`` when unknown."""
        ...


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An order as stored: what an idempotent replay needs."""

    order_id: str
    user_id: str
    client_order_id: str
    request_hash: str
    response: dict[str, Any] | None


class OrderRepository(Protocol):
    """Orders, routing decisions, allocations, child orders and their outbox events."""

    def find_by_client_order_id(self, user_id: str, client_order_id: str) -> StoredOrder | None:
        """The stored order of this idempotency key, if any."""
        ...

    def save_routed_order(
        self,
        order: OrderRequest,
        *,
        request_hash: str,
        decision: RoutingDecision,
        children: Sequence[ChildOrder],
        events: Sequence[DomainEvent],
    ) -> int | None:
        """Store order, decision, allocations, children and events in ONE transaction.

        Returns the decision id, or ``None`` when an order with the same ``(user_id,
        client_order_id)`` already exists (nothing is written then).
        """
        ...

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
        """Store placement outcomes (cascaded children too), events and the response at once.

        ``observed`` (placement rejects, timeouts, acknowledgement times) is learned in the
        same transaction, by the same moving-average statement as execution reports, with
        weight ``alpha``; the profiles it changed are returned.
        """
        ...

    def get_order_view(self, user_id: str, order_id: str) -> OrderView | None:
        """Decision, allocations, children and executions of a caller's own order."""
        ...

    def get_child(self, child_order_id: str) -> ChildOrder | None:
        """One child order."""
        ...

    def find_child_by_broker_order(self, broker_id: str, broker_order_id: str) -> ChildOrder | None:
        """The child order a broker knows by ``broker_order_id``."""
        ...


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One execution report's metrics row (the specification's ``execution_metrics``)."""

    report_key: str
    order_id: str
    child_order_id: str | None
    user_id: str
    broker_id: str
    symbol: str
    status: str
    filled_quantity: int
    fill_price: Decimal | None
    execution_latency_ms: int | None
    slippage_bps: float | None
    price_improvement_bps: float | None
    fill_rate: float
    execution_quality_score: float | None
    charges_inr: Decimal
    market_conditions: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChildStateUpdate:
    """A child order's new execution state (cumulative, as the winning report says)."""

    child_order_id: str
    status: ChildOrderStatus
    filled_quantity: int
    average_price: Decimal | None
    broker_order_id: str | None


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """What one report changes: its metrics row, the child's state and the profile."""

    record: ExecutionRecord
    child_state: ChildStateUpdate | None
    observation: ProfileObservation | None
    observed_at: datetime
    """When the execution happened (the profile's ``last_updated`` never moves backwards)."""


@dataclass(frozen=True, slots=True)
class TrackedExecution:
    """Outcome of tracking one report."""

    status: str
    """``recorded``, ``duplicate`` (already stored: nothing changes), ``unknown_child`` or
    ``quarantined`` (impossible for its child at apply time: held with its reason)."""
    child: ChildOrder | None = None
    """The child as it was before this report."""
    profile: BrokerProfile | None = None
    """The broker profile after the report's batch was learned from."""
    reason: str | None = None
    """The quarantine reason, when quarantined."""

    @property
    def late(self) -> bool:
        """A report stored for a child that had timed out and whose quantity went elsewhere."""
        return (
            self.status == "recorded" and self.child is not None and quantity_moved_on(self.child)
        )


@dataclass(frozen=True, slots=True)
class QuarantinedReport:
    """A report held back because it cannot be true (``quarantined_reports``)."""

    report: ExecutionReport
    """The normalised report (unchecked when its own figures contradict each other)."""
    stage: str
    """``webhook`` (before answering the broker) or ``tracking`` (at apply time)."""
    reason: str
    field: str | None
    message: str
    child_order_id: str | None = None
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class HeldReport:
    """A quarantined report as an operator lists it."""

    id: int
    quarantined_at: datetime
    stage: str
    reason: str
    field: str | None
    message: str
    report_key: str
    broker_id: str
    child_order_id: str | None
    order_id: str | None
    report: dict[str, Any]
    """The normalised report as stored (camelCase JSON)."""


ProfileKey = tuple[str, str]
"""``(broker_id, symbol)``."""


class Observed(NamedTuple):
    """One observation of a broker on a symbol, as the moving averages learn it."""

    broker_id: str
    symbol: str
    observation: ProfileObservation
    observed_at: datetime
    """When it happened; ``last_updated`` never moves backwards."""
    child_order_id: str | None = None
    """For a placement: the child placed, learned only while it is not yet stored as placed
    (so a repeated recording teaches nothing twice); ``None`` for a report."""


BatchFold = Callable[
    [Mapping[str, ChildOrder], AbstractSet[str]], Sequence[ExecutionPlan | QuarantinedReport]
]
"""Given the locked children by id and the report keys already stored, what to store: the plans
of the reports to apply and the reports to quarantine, in report order."""


class ExecutionRepository(Protocol):
    """Execution metrics, stored exactly once per report, with child state and learning."""

    def find_child_ids(
        self, broker_orders: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Our child order ids of ``(broker_id, broker_order_id)`` pairs; unknown ones absent."""
        ...

    def track_batch(
        self,
        child_order_ids: Collection[str],
        report_keys: Collection[str],
        fold: BatchFold,
        *,
        alpha: float,
    ) -> dict[ProfileKey, BrokerProfile]:
        """Store a batch's plans atomically with its children locked (see the adapter)."""
        ...

    def applied_keys(self, report_keys: Collection[str]) -> set[str]:
        """Those of ``report_keys`` whose report is applied (a metrics row is stored)."""
        ...


class QuarantineRepository(Protocol):
    """Reports that cannot be true, held with their reason for an operator."""

    def add(self, quarantined: QuarantinedReport) -> bool:
        """Store one; ``False`` when the same report is already held."""
        ...

    def list_recent(self, *, limit: int, reason: str | None = None) -> list[HeldReport]:
        """The newest held reports first, optionally of one reason."""
        ...


class AnalyticsRepository(Protocol):
    """Aggregates over a trader's executions."""

    def execution_analytics(self, user_id: str, days: int) -> ExecutionAnalytics:
        """Stats of ``user_id`` over the last ``days`` days; zeros for an empty window."""
        ...


class AnalyticsCache(Protocol):
    """Recently computed analytics. Failures raise ``CacheUnavailableError``."""

    def get(self, user_id: str, days: int) -> ExecutionAnalytics | None:
        """The cached analytics of ``user_id`` over ``days`` days, or ``None``."""
        ...

    def put(self, user_id: str, days: int, analytics: ExecutionAnalytics) -> None:
        """Remember ``analytics`` for the cache's time to live."""
        ...


class RollupRepository(Protocol):
    """Hourly analytics roll-ups and the time partitions of ``execution_metrics``."""

    def rolled_through(self) -> datetime | None:
        """The watermark: every hour before it is rolled up (``None`` before the first run)."""
        ...

    def earliest_activity(self) -> datetime | None:
        """When the oldest stored execution happened (``None`` when none is stored)."""
        ...

    def roll_hours(self, start: datetime, end: datetime) -> int:
        """Roll the hours of ``[start, end)`` again from the raw rows (idempotent)."""
        ...

    def ensure_partitions(self, start: datetime, end: datetime) -> int:
        """Create the missing partitions covering ``[start, end)``; how many were created."""
        ...

    def drop_partitions_before(self, cutoff: datetime) -> int:
        """Drop the raw partitions wholly before ``cutoff`` (never the roll-ups)."""
        ...


class Outbox(Protocol):
    """The transactional outbox."""

    def relay(
        self,
        publish: Callable[[Sequence[DomainEvent]], list[DomainEvent]],
        *,
        limit: int = 100,
        min_age_s: float = 10.0,
    ) -> tuple[int, int]:
        """Publish pending events older than ``min_age_s``; return (published, failed)."""
        ...

    def add(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """Store events on their own; return the new ones (a repeated event id is a no-op)."""
        ...

    def mark_published(self, event_ids: Sequence[UUID]) -> None:
        """Record that these events reached the bus."""
        ...

    def mark_failed(self, event_ids: Sequence[UUID], error: str) -> None:
        """Count a failed attempt; the events stay pending."""
        ...


class EventPublisher(Protocol):
    """Publishes events to the bus."""

    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """Publish events; return those that failed (the caller keeps them in the outbox)."""
        ...


@dataclass(frozen=True, slots=True)
class PlacementResult:
    """A broker's answer to one child order."""

    child_order_id: str
    status: ChildOrderStatus
    broker_order_id: str | None = None
    reason: str | None = None
    response_time_ms: float | None = None
    reports: tuple[ExecutionReport, ...] = ()
    """Execution reports the broker gave synchronously (the paper broker's simulated
    postbacks); a real broker's arrive later through its webhook."""


class BrokerGateway(Protocol):
    """Sends child orders to brokers."""

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        """Place one child order; a timeout or a reject is a result, not an exception."""
        ...


@runtime_checkable
class BrokerOrderLookup(Protocol):
    """Asks a broker whether it holds an order we tagged with a child order id."""

    def lookup(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """The broker's state of ``child``; an outage or timeout is ``UNKNOWN``, not an error."""
        ...


@runtime_checkable
class BrokerOrderCanceller(Protocol):
    """Cancels what a timed-out child may have left at its broker, and says what became of it."""

    def cancel_child(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Cancel the order placed under ``child``'s tag; return the broker's state after.

        ``NOT_FOUND``: the broker holds no such order. ``FOUND`` with a terminal status and a
        filled quantity: the cancel (or a fill before it) is confirmed. ``FOUND`` still working
        or ``UNKNOWN``: the cancel is not confirmed. Never raises.
        """
        ...


@runtime_checkable
class BrokerOrderPoller(Protocol):
    """Reads a placed child's order history from its broker (a postback that never came)."""

    def poll(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """The broker's states of ``child``'s order as reports, oldest first; never raises."""
        ...


@runtime_checkable
class BrokerHealthProbe(Protocol):
    """Asks a broker whether it answers at all, with a cheap read that risks no order."""

    def probe(self, *, timeout_s: float) -> bool | None:
        """Whether the broker answered within ``timeout_s``; never raises.

        ``None`` when it cannot be asked (no platform credentials).
        """
        ...


class BrokerHealth(Protocol):
    """Probes brokers by id (the gateway registry): ``None`` when it cannot tell."""

    def probe(self, broker_id: str, *, timeout_s: float) -> bool | None:
        """Whether ``broker_id`` answers; ``None`` when its adapter has no probe."""
        ...


class OutageLedger(Protocol):
    """Brokers in an outage episode, and forgetting one when its broker answers again."""

    def brokers_in_outage(self) -> list[str]:
        """Brokers whose latest outcomes are an outage that has not ended, by id."""
        ...

    def recover(self, broker_id: str) -> list[tuple[str, str]]:
        """Forget ``broker_id``'s outage episode; the (broker, symbol) profiles rewritten."""
        ...


@dataclass(frozen=True, slots=True)
class StuckOrder:
    """An order stored with its decision whose answer was never written (see the reconciler)."""

    order_id: str
    user_id: str
    client_order_id: str
    quantity: int
    decision_id: int
    decision: RoutingDecision
    children: tuple[ChildOrder, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Settlement:
    """What finishing a stuck order writes, in the transaction that holds its lock."""

    order_id: str
    children: tuple[ChildOrder, ...]
    """The children whose state changed."""
    events: tuple[DomainEvent, ...]
    response: dict[str, Any]
    """The order's final answer (an ``OrderRoutingResult``), returned to every retry."""
    status: str


class StuckOrders(Protocol):
    """Orders whose answer was never written, finished one at a time under a row lock."""

    def settle_next(
        self, *, older_than_s: float, settle: Callable[[StuckOrder], Settlement]
    ) -> Settlement | None:
        """Settle the oldest unanswered order older than ``older_than_s`` that none else holds.

        What ``settle`` decides is stored in the transaction holding the order's lock; ``None``
        when there is no such order.
        """
        ...


class RateCounter(Protocol):
    """Orders sent per broker in the current second (brokers' API rate limits)."""

    def hit(self, broker_ids: Sequence[str]) -> None:
        """Count one order sent now to each entry of ``broker_ids`` (repeats count again)."""
        ...


class SecretStore(Protocol):
    """Broker secrets by reference."""

    def get(self, ref: str) -> list[str]:
        """The secrets of ``ref``, current first (several while rotating); empty if unknown."""
        ...


UserMessage = tuple[str, MessageType, Mapping[str, Any]]
"""``(user_id, message_type, data)`` of one push."""


class Notifier(Protocol):
    """Pushes live updates to a trader's open connections."""

    def notify_user(self, user_id: str, message_type: MessageType, data: Mapping[str, Any]) -> int:
        """Push one message to every connection of ``user_id``; return how many received it."""
        ...

    def notify_users(self, messages: Sequence[UserMessage]) -> int:
        """Push several ``(user_id, message_type, data)`` messages, looking each user up once."""
        ...

    def notify_symbol_subscribers(
        self, symbol: str, message_type: MessageType, data: Mapping[str, Any]
    ) -> int:
        """Push one message to every connection subscribed to ``symbol``."""
        ...

    def notify_all(self, message_type: MessageType, data: Mapping[str, Any]) -> int:
        """Push one message to every live connection, whoever owns it (``BROKER_STATUS``)."""
        ...


# -- Alarms (the operator view) ------------------------------------------------------------------


class AlarmStatus(Protocol):
    """The states of the stack's alarms (CloudWatch, or local mode's evaluation of the same)."""

    def summary(self) -> AlarmSummary:
        """Every alarm of :data:`~shared.domain.alarms.ALARM_DEFINITIONS` with its state.

        Raises ``MonitoringUnavailableError`` (503) when the source cannot be read.
        """
        ...


# -- WebSocket connections (ws_connect) ---------------------------------------------------------


class TokenVerifier(Protocol):
    """Verifies a trader's or an operator's token (``JwtVerifier``)."""

    def verify(self, token: str | None) -> TraderIdentity:
        """The identity of the token's holder.

        Raises ``AuthenticationError`` (401), ``ForbiddenError`` (403) or
        ``IdentityProviderUnavailableError`` (503).
        """
        ...


class ConnectionRegistry(Protocol):
    """Where connections and their filters live (``RedisConnectionRegistry``).

    Failures raise ``CacheUnavailableError``.
    """

    def register(self, connection_id: str, user_id: str, *, trader: bool = True) -> None:
        """Record a new connection (``trader=False``: an operator's, never sent order updates)."""
        ...

    def remove(self, connection_id: str) -> str | None:
        """Forget a connection; return its user id."""
        ...

    def touch(self, connection_id: str) -> ConnectionRecord | None:
        """Refresh a connection's TTL; ``None`` if unknown."""
        ...

    def subscribe(
        self, connection_id: str, *, order_ids: Iterable[str] = (), symbols: Iterable[str] = ()
    ) -> ConnectionRecord | None:
        """Add filters."""
        ...

    def unsubscribe(
        self,
        connection_id: str,
        *,
        order_ids: Collection[str] | None = None,
        symbols: Collection[str] | None = None,
    ) -> ConnectionRecord | None:
        """Remove filters (all of them without arguments)."""
        ...

    def count_active(self) -> int:
        """How many connections are live."""
        ...


class ReplySender(Protocol):
    """Sends a direct reply to one connection (``ApiGatewayNotifier.reply``)."""

    def reply(self, connection_id: str, message_type: MessageType, data: Mapping[str, Any]) -> bool:
        """Deliver one ``{"type", "data", "timestamp"}`` message; never raises."""
        ...


# -- Pre-trade risk (shared/services/risk.py) ----------------------------------------------------


@dataclass(frozen=True)
class TraderRiskState:
    """What the risk rules read of one trader, in one round trip.

    Nothing of it is cached, so a kill switch takes effect on the next order and the open-order
    count is exact.
    """

    switches: tuple[KillSwitch, ...]
    """The current state of the global switch and the trader's own (those ever set)."""
    open_orders: int
    """The trader's orders with at least one child still working (pending, placed, part-filled)."""
    limits: TraderLimitOverrides | None
    """The trader's own limits, or ``None`` when the defaults apply."""


@dataclass(frozen=True)
class TraderLimitOverrides:
    """A trader's own limits; ``None`` fields keep the default of the settings."""

    max_order_quantity: int | None = None
    max_order_value_inr: Decimal | None = None
    max_open_orders: int | None = None


class RiskStateReader(Protocol):
    """Reads a trader's risk state from the source of truth."""

    def read(self, user_id: str) -> TraderRiskState:
        """Kill switches, open orders and limit overrides of ``user_id``.

        Raises ``DataUnavailableError`` when the source of truth cannot be reached.
        """
        ...


class InstrumentRepository(Protocol):
    """The instrument master (``instruments``)."""

    def get(self, symbol: str, exchange: Exchange) -> Instrument | None:
        """The record of ``symbol`` on ``exchange``; ``None`` when there is none."""
        ...

    def upsert(self, instrument: Instrument) -> None:
        """Create or replace a record (the daily load, local seeding)."""
        ...

    def upsert_many(self, instruments: Sequence[Instrument]) -> int:
        """Create or replace records at once; return how many were created or changed.

        A record already stored with the same trading rules and band is left alone (not
        counted), so a repeated load writes nothing.
        """
        ...


# -- Real brokers' order APIs (Kite, Upstox, Dhan) ----------------------------------------------


class BrokerClient(Protocol):
    """One broker's order API, called under the credentials of one account.

    Every method takes the account, so one client (one HTTP connection pool) serves every
    account at that broker. A failure raises
    :class:`~shared.domain.broker_orders.BrokerCallError` of one
    :class:`~shared.domain.broker_orders.BrokerErrorKind` (a timeout is ``TIMEOUT``); nothing is
    retried, since a repeated placement could place twice.
    """

    def place(self, account: BrokerAccount, order: BrokerOrderRequest, *, timeout_s: float) -> str:
        """Place ``order``; return the broker's order id."""
        ...

    def modify(
        self,
        account: BrokerAccount,
        broker_order_id: str,
        change: BrokerOrderChange,
        *,
        timeout_s: float,
    ) -> str:
        """Modify an open order; return its order id."""
        ...

    def cancel(self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float) -> str:
        """Ask the broker to cancel an open order; return its order id.

        The cancellation is confirmed by a later status (or postback), not by this answer.
        """
        ...

    def status(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> BrokerOrderState:
        """The order's current state."""
        ...

    def history(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> list[BrokerOrderState]:
        """The order's states, oldest first (what its postbacks would have said)."""
        ...

    def find_by_tag(
        self, account: BrokerAccount, tag: str, *, timeout_s: float
    ) -> BrokerOrderState | None:
        """The current state of today's order placed under ``tag``, or ``None`` if none was.

        What a placement that timed out (no broker order id) is reconciled with.
        """
        ...


# -- broker webhooks ----------------------------------------------------------------------------


class WebhookReader(Protocol):
    """Authenticates a broker's webhook by its scheme and reads it as a report."""

    def read(
        self,
        broker: BrokerConfig,
        secrets: Sequence[str],
        *,
        headers: Mapping[str, str],
        body: bytes,
        token: str | None,
        now: datetime,
    ) -> ExecutionReport:
        """The report of one webhook.

        Raises ``AuthenticationError`` (bad signature, checksum or token: nothing is parsed
        that the scheme can verify first), ``MalformedPayloadError`` (400, naming the field),
        ``UnsupportedPayloadError`` (an update we do not track) or ``ImpossibleReportError``
        (authentic, but its own figures contradict each other).
        """
        ...


# -- Administration (functions/admin) and a trader's order history ------------------------------


class BrokerAdministration(Protocol):
    """Brokers as an operator changes them, every change audited in the same transaction.

    Failures of the store raise ``DataUnavailableError``.
    """

    def list_brokers(self) -> list[BrokerAdminView]:
        """Every broker, enabled or not, with its routing status, by id."""
        ...

    def register(self, broker: BrokerConfig, *, actor: str) -> AuditEntry:
        """Store a new broker (status ACTIVE). Raises ``ConflictError`` if the id exists."""
        ...

    def update(self, broker_id: str, update: BrokerUpdate, *, actor: str) -> BrokerAdminView:
        """Change a broker's configuration. Raises ``NotFoundError`` if unknown."""
        ...

    def set_status(
        self, broker_id: str, change: StatusChange, *, actor: str
    ) -> tuple[BrokerAdminView, AuditEntry]:
        """Set a broker's routing status (row-locked). Raises ``NotFoundError`` if unknown."""
        ...

    def audit(self, *, limit: int, broker_id: str | None = None) -> list[AuditEntry]:
        """The newest administrative changes first."""
        ...

    def statuses(self) -> list[BrokerStatusMessage]:
        """The routing status of every enabled broker (the ``ROUTING_STATUS`` reply)."""
        ...

    def profiles(self, *, symbol: str | None, limit: int) -> list[BrokerProfile]:
        """Learned profiles (of one symbol, or all), by symbol then broker."""
        ...


class OrderStatusReader(Protocol):
    """Orders' current status (what the tracker reads after a batch to announce completion)."""

    def order_statuses(self, order_ids: Collection[str]) -> dict[str, str]:
        """The status of each of ``order_ids`` that exists."""
        ...

    def claim_final_statuses(
        self, order_ids: Collection[str], finals: Collection[str]
    ) -> dict[str, str]:
        """Those of ``order_ids`` whose status is one of ``finals`` not announced yet.

        Each ``(order, status)`` is claimed once, atomically: a concurrent or repeated caller
        gets nothing for it, so its ``ORDER_UPDATE`` is pushed once.
        """
        ...


class OrderHistory(Protocol):
    """A trader's own orders, newest first, in keyset pages."""

    def list_orders(self, user_id: str, query: HistoryQuery) -> list[OrderView]:
        """Up to ``query.limit + 1`` of ``user_id``'s orders after ``query.after``.

        The extra row tells the caller whether another page exists.
        """
        ...

    def open_orders(self, user_id: str, *, limit: int) -> list[OrderView]:
        """``user_id``'s orders with a child still working, newest first."""
        ...


# -- reconciliation by polling (shared/services/polling.py) ---------------------------------------


class QuietChildren(Protocol):
    """Placed children no terminal report has settled yet (the poller's input)."""

    def take_quiet(self, *, older_than_s: float, max_age_s: float, limit: int) -> list[ChildOrder]:
        """Children to poll now, each stamped as polled so the next run takes others first.

        Up to ``limit`` children still working (or timed out) placed more than
        ``older_than_s`` and less than ``max_age_s`` seconds ago, least recently polled first.
        """


# -- trader broker connections (docs/brokers.md, "Trader broker connections") -----------------


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A secret under envelope encryption: AES-GCM with a data key that is itself encrypted."""

    ciphertext: bytes
    """Nonce then AES-256-GCM ciphertext and tag of the secret."""
    wrapped_key: bytes
    """The data key, encrypted by the key-encryption key (KMS, or the local key)."""
    key_id: str
    """Which key-encryption key wrapped it."""


class SecretSealer(Protocol):
    """Envelope encryption of broker tokens, bound to a context (the trader and the broker)."""

    def seal(self, plaintext: bytes, context: Mapping[str, str]) -> SealedSecret:
        """Encrypt ``plaintext`` under a fresh data key; ``context`` must match to open it."""
        ...

    def open(self, sealed: SealedSecret, context: Mapping[str, str]) -> bytes:
        """Decrypt ``sealed``.

        Raises ``DataUnavailableError`` when the key service cannot be reached and
        ``ValueError`` when the secret or its context was tampered with.
        """
        ...


@dataclass(frozen=True, slots=True)
class StoredLink:
    """A trader's link and its sealed credentials (``None`` once unlinked)."""

    link: BrokerLink
    sealed: SealedSecret | None


class BrokerLinkStore(Protocol):
    """Traders' broker links and the single-use OAuth states of their link flows."""

    def list_for_user(self, user_id: str) -> list[BrokerLink]:
        """Every link of ``user_id`` (any status), by broker id."""
        ...

    def routing_access(self, user_id: str) -> tuple[list[BrokerLink], dict[str, str]]:
        """The links of ``user_id`` and the brokers an operator holds, read together.

        :meth:`list_for_user`, and broker id -> ``MAINTENANCE``/``SUSPENDED`` of every enabled
        broker that is not ``ACTIVE``: read from the source of truth on every order, so a
        cache that missed its eviction cannot bring flow back.
        """
        ...

    def get(self, user_id: str, broker_id: str) -> StoredLink | None:
        """One link with its sealed credentials."""
        ...

    def save(self, link: BrokerLink, sealed: SealedSecret) -> None:
        """Insert or replace the link and its credentials."""
        ...

    def set_status(
        self, user_id: str, broker_id: str, status: LinkStatus, *, at: datetime, erase: bool
    ) -> BrokerLink | None:
        """Change a link's status (``erase`` drops its credentials); ``None`` if there is none."""
        ...

    def add_state(self, digest: str, user_id: str, broker_id: str, *, expires_at: datetime) -> None:
        """Remember the digest of an OAuth ``state`` issued to ``user_id`` for ``broker_id``."""
        ...

    def take_state(self, digest: str, *, now: datetime) -> tuple[str, str] | None:
        """Consume a state once: its ``(user_id, broker_id)``; ``None`` if unknown or used."""
        ...

    def list_all(
        self, *, limit: int, broker_id: str | None = None, status: LinkStatus | None = None
    ) -> list[BrokerLink]:
        """Every trader's links (operators' view), most recently changed first."""
        ...


@dataclass(frozen=True, slots=True)
class LinkedSession:
    """What a broker's session exchange gives: the account and its order-API credentials."""

    account_id: str
    credentials: Mapping[str, str]
    """The :class:`~shared.domain.broker_orders.BrokerAccount` fields (``api_key``,
    ``client_id``, ``access_token``): sealed before they are stored."""
    expires_at: datetime | None


class BrokerSessions(Protocol):
    """The brokers' login APIs: login URLs, session exchanges, token checks.

    Raises :class:`~shared.domain.broker_orders.BrokerCallError` when the broker refuses or
    cannot be reached.
    """

    def login_url(self, broker: BrokerConfig, state: str) -> str:
        """Where the trader logs in (Kite, Upstox); the broker sends ``state`` back."""
        ...

    def exchange(
        self, broker: BrokerConfig, params: Mapping[str, str], *, now: datetime
    ) -> LinkedSession:
        """Trade the redirect's ``request_token`` (Kite) or ``code`` (Upstox) for a session."""
        ...

    def adopt(self, broker: BrokerConfig, access_token: str, *, now: datetime) -> LinkedSession:
        """Check a token the trader generated at the broker (Dhan) and describe its session."""
        ...


class TraderAccounts(Protocol):
    """The account a child order goes out under: its trader's own linked one."""

    def account(self, user_id: str, broker_id: str) -> BrokerAccount:
        """The trader's LIVE account at the broker.

        Raises ``BrokerCallError(TOKEN)`` when there is none (nothing is sent) and
        ``BrokerCallError(UNREACHABLE)`` when the store or the key service cannot be read.
        """
        ...

    def token_rejected(self, user_id: str, broker_id: str) -> None:
        """The broker refused the token (``TokenException``): the link becomes EXPIRED."""
        ...


# -- market data (docs/market-data.md) ------------------------------------------------------------

InstrumentKey = tuple[Exchange, str]
"""``(exchange, symbol)``."""


class MarketDataSource(Protocol):
    """A broker's market-data API on the platform's own connection (no trader's).

    Failures raise ``MarketDataUnavailableError`` with the reason.
    """

    max_quotes_per_call: int
    """How many instruments one :meth:`quotes` call may ask for."""

    def quotes(self, instruments: Sequence[InstrumentKey]) -> dict[InstrumentKey, MarketQuote]:
        """Quotes of ``instruments``; an instrument the source does not know is absent."""
        ...

    def instrument_rows(self, exchange: Exchange) -> Iterable[Mapping[str, str | None]]:
        """The rows of the day's instruments dump of ``exchange``, by the dump's column names."""
        ...


class QuoteCache(Protocol):
    """Quotes shared by every container for about a second.

    Failures raise ``CacheUnavailableError``.
    """

    def get(self, key: InstrumentKey) -> MarketQuote | None:
        """The cached quote, or ``None`` when absent or expired."""
        ...

    def put(self, quotes: Sequence[MarketQuote]) -> None:
        """Cache quotes for the cache's time to live."""
        ...


class MarketStatisticsStore(Protocol):
    """The market statistics of the broker profiles (spread, depth, volume, last price)."""

    def routed_symbols(self) -> list[str]:
        """Every symbol some broker has a profile for (the symbols the router routes)."""
        ...

    def apply(self, statistics: Sequence[MarketStatistics]) -> int:
        """Write each symbol's statistics into all its profiles; return the rows changed."""
        ...
