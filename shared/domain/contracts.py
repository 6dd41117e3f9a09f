"""What crosses a process boundary: events, WebSocket messages and HTTP routes, typed.

One module names every contract the processes share, so a producer and its consumers cannot
drift apart on a string (``docs/architecture.md`` §6):

* EventBridge (and the MSK topic): :class:`EventSource`, :class:`DetailType`, a typed payload
  per detail type and :class:`DomainEvent`, whose :attr:`DomainEvent.detail` is the JSON sent:
  a snake_case envelope (``schema_version``, ``order_id``, ``user_id``, ``idempotency_key``)
  around the camelCase payload. :data:`TRACKED_EVENTS` are the events the CDK stack's rules
  (and local mode's bus) deliver to ``track_execution``.
* WebSocket messages: :class:`MessageType` (pushed updates and direct replies).
* The HTTP API: :class:`ApiPath`, the route templates as API Gateway writes them (prefix
  included); :func:`resolver_path` turns one into the Powertools rule the handlers register.

The module is pure (pydantic and the domain models only), so the domain, the handlers, the CDK
stack and local mode all import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Final
from uuid import UUID

from shared.domain.execution import ExecutionReport
from shared.domain.models import (
    FrozenModel,
    OrderRequest,
    RoutingDecision,
    RoutingObjective,
    Side,
)
from shared.domain.orders import ChildOrder

EVENT_SCHEMA_VERSION: Final = 1
"""``schema_version`` of every event's detail; bump it on a change consumers must know of."""

ENVELOPE_FIELDS: Final = ("schema_version", "order_id", "user_id", "idempotency_key")
"""The snake_case fields every event's detail carries around its payload."""


class EventSource(StrEnum):
    """EventBridge ``source`` of the service's events."""

    ROUTING = "order-router.routing"
    BROKERS = "order-router.brokers"


class DetailType(StrEnum):
    """EventBridge ``detail-type`` of the service's events."""

    ORDER_ROUTED = "OrderRouted"
    CHILD_ORDER_PLACED = "ChildOrderPlaced"
    EXECUTION_REPORTED = "ExecutionReported"


class MessageType(StrEnum):
    """``type`` of a WebSocket message: an update pushed to traders, or a direct reply."""

    ROUTING_UPDATE = "ROUTING_UPDATE"
    EXECUTION_UPDATE = "EXECUTION_UPDATE"
    PROFILE_UPDATE = "PROFILE_UPDATE"
    PONG = "PONG"
    SUBSCRIBED = "SUBSCRIBED"
    ERROR = "ERROR"
    BROKER_STATUS = "BROKER_STATUS"
    """An operator changed a broker's routing status (pushed to every connection)."""
    ORDER_UPDATE = "ORDER_UPDATE"
    """A child rejected, a cascade, or an order's completion."""
    ROUTING_STATUS = "ROUTING_STATUS"
    """Reply to ``{"action": "status"}``: brokers' states and the trader's open orders."""


UPDATE_MESSAGES: Final = frozenset(
    {
        MessageType.ROUTING_UPDATE,
        MessageType.EXECUTION_UPDATE,
        MessageType.PROFILE_UPDATE,
        MessageType.BROKER_STATUS,
        MessageType.ORDER_UPDATE,
    }
)
"""Messages pushed to every connection of a user or symbol."""
REPLY_MESSAGES: Final = frozenset(
    {MessageType.PONG, MessageType.SUBSCRIBED, MessageType.ERROR, MessageType.ROUTING_STATUS}
)
"""Messages answering one connection's own request."""


API_PREFIX: Final = "/api/v1"
TRADER_PREFIX: Final = f"{API_PREFIX}/trading/intelligent"
WEBHOOK_PREFIX: Final = f"{API_PREFIX}/webhooks/brokers"
ADMIN_PREFIX: Final = f"{API_PREFIX}/admin"


class ApiPath(StrEnum):
    """Every path of the HTTP API, as API Gateway route templates (``{name}`` parameters)."""

    SMART_ORDER = f"{TRADER_PREFIX}/orders/smart"
    ANALYZE_ORDER = f"{TRADER_PREFIX}/orders/analyze"
    ORDER = f"{TRADER_PREFIX}/orders/{{orderId}}"
    EXECUTION_ANALYTICS = f"{TRADER_PREFIX}/analytics/execution"
    BROKER_PROFILES = f"{TRADER_PREFIX}/brokers/profiles"
    HEALTH = f"{API_PREFIX}/health"
    OPENAPI = f"{API_PREFIX}/openapi.json"
    SIGNED_WEBHOOK = f"{WEBHOOK_PREFIX}/{{brokerId}}"
    TOKEN_WEBHOOK = f"{WEBHOOK_PREFIX}/{{brokerId}}/{{token}}"
    ORDERS = f"{TRADER_PREFIX}/orders"
    ADMIN_BROKERS = f"{ADMIN_PREFIX}/brokers"
    ADMIN_BROKER = f"{ADMIN_PREFIX}/brokers/{{brokerId}}"
    ADMIN_BROKER_STATUS = f"{ADMIN_PREFIX}/brokers/{{brokerId}}/status"
    ADMIN_PROFILES = f"{ADMIN_PREFIX}/profiles"
    ADMIN_QUARANTINE = f"{ADMIN_PREFIX}/quarantine"
    ADMIN_AUDIT = f"{ADMIN_PREFIX}/audit"
    ADMIN_CONNECTIONS = f"{ADMIN_PREFIX}/connections"
    BROKER_CONNECTIONS = f"{TRADER_PREFIX}/broker-connections"
    BROKER_CONNECTION = f"{TRADER_PREFIX}/broker-connections/{{brokerId}}"
    BROKER_CONNECTION_LOGIN = f"{TRADER_PREFIX}/broker-connections/{{brokerId}}/login"
    BROKER_CONNECTION_CALLBACK = f"{TRADER_PREFIX}/broker-connections/{{brokerId}}/callback"
    BROKER_CONNECTION_REFRESH = f"{TRADER_PREFIX}/broker-connections/{{brokerId}}/refresh"
    ADMIN_MARKET_REFRESH = f"{ADMIN_PREFIX}/market/refresh"
    ADMIN_ALARMS = f"{ADMIN_PREFIX}/alarms"


_TEMPLATE_PARAMETER = re.compile(r"\{(\w+)\}")


def resolver_path(path: ApiPath) -> str:
    """The Powertools rule of ``path``: ``{orderId}`` becomes ``<orderId>``.

    Powertools documents a ``<name>`` rule as ``{name}``, so the handler's OpenAPI document and
    the stack's routes name the same parameters.

    Parameters
    ----------
    path
        A route template.

    Returns
    -------
    str
        The rule to pass to ``app.get``/``app.post``.
    """
    return _TEMPLATE_PARAMETER.sub(r"<\1>", path)


# -- events -------------------------------------------------------------------------------------


class RoutedAllocation(FrozenModel):
    """One broker's share in an ``OrderRouted`` event."""

    broker_id: str
    quantity: int
    allocation_percentage: Decimal
    priority: int


class OrderRoutedPayload(FrozenModel):
    """``OrderRouted``: the routing decision of an accepted order, for its trader's screen."""

    source: ClassVar[EventSource] = EventSource.ROUTING
    detail_type: ClassVar[DetailType] = DetailType.ORDER_ROUTED

    symbol: str
    side: Side
    quantity: int
    strategy: RoutingObjective
    confidence_score: float
    allocations: tuple[RoutedAllocation, ...]


class ChildOrderPlacedPayload(FrozenModel):
    """``ChildOrderPlaced``: one child's outcome at its broker."""

    source: ClassVar[EventSource] = EventSource.ROUTING
    detail_type: ClassVar[DetailType] = DetailType.CHILD_ORDER_PLACED

    child: ChildOrder


class ExecutionReportedPayload(FrozenModel):
    """``ExecutionReported``: a broker's report on one child, normalised."""

    source: ClassVar[EventSource] = EventSource.BROKERS
    detail_type: ClassVar[DetailType] = DetailType.EXECUTION_REPORTED

    report: ExecutionReport


EventPayload = OrderRoutedPayload | ChildOrderPlacedPayload | ExecutionReportedPayload

PAYLOADS: Final[Mapping[DetailType, type[EventPayload]]] = {
    DetailType.ORDER_ROUTED: OrderRoutedPayload,
    DetailType.CHILD_ORDER_PLACED: ChildOrderPlacedPayload,
    DetailType.EXECUTION_REPORTED: ExecutionReportedPayload,
}
"""The payload model of each detail type (each names its source)."""

TRACKED_EVENTS: Final = frozenset(
    (PAYLOADS[t].source, t)
    for t in (
        DetailType.EXECUTION_REPORTED,
        DetailType.ORDER_ROUTED,
        DetailType.CHILD_ORDER_PLACED,
    )
)
"""``(source, detail-type)`` pairs the bus delivers to ``track_execution``."""


class UnknownDetailTypeError(ValueError):
    """A detail type no contract defines."""


def read_payload(detail_type: str, detail: Mapping[str, Any]) -> EventPayload:
    """The typed payload of a received event's detail (the envelope fields are set aside).

    Parameters
    ----------
    detail_type
        The event's ``detail-type``.
    detail
        The event's ``detail`` as received (JSON).

    Returns
    -------
    EventPayload
        The payload model of ``detail_type``.

    Raises
    ------
    UnknownDetailTypeError
        ``detail_type`` is none of :class:`DetailType`.
    pydantic.ValidationError
        The payload breaks its model.
    """
    try:
        model = PAYLOADS[DetailType(detail_type)]
    except ValueError:
        raise UnknownDetailTypeError(f"unknown detail-type {detail_type!r}") from None
    return model.model_validate({k: v for k, v in detail.items() if k not in ENVELOPE_FIELDS})


class DomainEvent(FrozenModel):
    """An event for EventBridge (and the MSK topic), with its typed payload.

    Its source and detail type follow from the payload's model, so they cannot disagree with
    it. Every detail carries ``schema_version``, ``order_id``, ``user_id`` and
    ``idempotency_key`` so consumers can de-duplicate at-least-once deliveries and push updates
    to the owner only.
    """

    event_id: UUID
    order_id: str
    user_id: str
    idempotency_key: str
    payload: EventPayload
    schema_version: int = EVENT_SCHEMA_VERSION

    @property
    def source(self) -> EventSource:
        """EventBridge ``source``."""
        return self.payload.source

    @property
    def detail_type(self) -> DetailType:
        """EventBridge ``detail-type``."""
        return self.payload.detail_type

    @property
    def detail(self) -> dict[str, Any]:
        """The JSON ``detail`` on the wire: the snake_case envelope, then the camelCase payload."""
        return {
            "schema_version": self.schema_version,
            "order_id": self.order_id,
            "user_id": self.user_id,
            "idempotency_key": self.idempotency_key,
            **self.payload.model_dump(mode="json", by_alias=True),
        }

    @classmethod
    def from_wire(
        cls, *, event_id: UUID, source: str, detail_type: str, detail: Mapping[str, Any]
    ) -> DomainEvent:
        """The event stored or sent as ``(source, detail_type, detail)``.

        Raises
        ------
        UnknownDetailTypeError
            ``detail_type`` is none of :class:`DetailType`.
        ValueError
            ``source`` is not the detail type's source, or the detail breaks its model.
        """
        payload = read_payload(detail_type, detail)
        if source != payload.source:
            raise ValueError(f"{detail_type} comes from {payload.source}, not {source!r}")
        return cls(
            event_id=event_id,
            order_id=detail["order_id"],
            user_id=detail["user_id"],
            idempotency_key=detail["idempotency_key"],
            schema_version=detail["schema_version"],
            payload=payload,
        )


def order_routed_event(
    order: OrderRequest, decision: RoutingDecision, event_id: UUID
) -> DomainEvent:
    """The ``OrderRouted`` event of a routed order (one per order)."""
    return DomainEvent(
        event_id=event_id,
        order_id=order.order_id,
        user_id=order.user_id,
        idempotency_key=f"{DetailType.ORDER_ROUTED}:{order.order_id}",
        payload=OrderRoutedPayload(
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            strategy=decision.strategy,
            confidence_score=decision.confidence_score,
            allocations=tuple(
                RoutedAllocation(
                    broker_id=a.broker_id,
                    quantity=a.quantity,
                    allocation_percentage=a.allocation_percentage,
                    priority=a.priority,
                )
                for a in decision.allocations
            ),
        ),
    )


def execution_reported_event(
    order_id: str, user_id: str, report: ExecutionReport, event_id: UUID
) -> DomainEvent:
    """The ``ExecutionReported`` event of a broker report, keyed by the report's fact."""
    return DomainEvent(
        event_id=event_id,
        order_id=order_id,
        user_id=user_id,
        idempotency_key=report.idempotency_key,
        payload=ExecutionReportedPayload(report=report),
    )
