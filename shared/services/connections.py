"""WebSocket connections: authenticate on ``$connect``, forget on ``$disconnect``, answer messages.

Client messages (``$default`` route), JSON with an ``action``:

* ``{"action": "ping"}`` -> ``PONG`` (and the connection's TTL is refreshed);
* ``{"action": "subscribe", "orderIds": [...], "symbols": [...]}`` -> ``SUBSCRIBED`` with the
  connection's filters (added to the existing ones);
* ``{"action": "unsubscribe", "orderIds": [...], "symbols": [...]}`` -> ``SUBSCRIBED``; without
  lists every filter is removed (the connection receives everything of its owner again);
* ``{"action": "status"}`` -> ``ROUTING_STATUS``: every enabled broker's routing status and the
  trader's open orders (a client sends it after every (re)connect: API Gateway cannot send on
  ``$connect``, the connection exists only once it answered);
* anything else -> ``ERROR`` with a code, to that connection only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.domain.contracts import MessageType
from shared.domain.errors import CacheUnavailableError, DataUnavailableError
from shared.domain.identity import TRADER_GROUP, TraderIdentity
from shared.observability import emit_metric
from shared.ports import (
    BrokerAdministration,
    ConnectionRegistry,
    OrderHistory,
    ReplySender,
    TokenVerifier,
)

logger = logging.getLogger(__name__)

ACTIVE_CONNECTIONS_METRIC = "ActiveConnections"
"""The specification's ``broker.connections.active``."""
MAX_ORDER_FILTERS = 100
MAX_SYMBOL_FILTERS = 50
MAX_OPEN_ORDERS = 20
"""Open orders in a ``ROUTING_STATUS`` reply (newest first; ``GET /orders`` pages the rest)."""
MAX_BODY_CHARS = 16 * 1024
"""Client messages are tiny; a large one is refused before JSON parsing."""

_Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:&-]+$")
]


class _Filters(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    action: Literal["subscribe", "unsubscribe"]
    order_ids: list[_Identifier] | None = Field(default=None, alias="orderIds", max_length=100)
    symbols: list[_Identifier] | None = Field(default=None, max_length=50)


class _Envelope(BaseModel):
    action: str


class ConnectionService:
    """The ``ws_connect`` use cases.

    Parameters
    ----------
    verifier
        Checks the token presented on ``$connect``.
    registry
        Stores connections and their filters.
    replies
        Sends direct replies to one connection.
    service_name
        The ``service`` dimension of the ``ActiveConnections`` metric.
    brokers, orders
        Brokers' routing status and the trader's open orders (the ``status`` action); without
        them the action answers ``ERROR`` ``UNAVAILABLE``.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        registry: ConnectionRegistry,
        replies: ReplySender,
        *,
        service_name: str = "order-router",
        brokers: BrokerAdministration | None = None,
        orders: OrderHistory | None = None,
    ) -> None:
        self._brokers = brokers
        self._orders = orders
        self._verifier = verifier
        self._registry = registry
        self._replies = replies
        self._service_name = service_name

    def connect(self, connection_id: str, token: str | None) -> TraderIdentity:
        """Verify the token and register the connection under its user id.

        A TRADER token (ADMIN too or not) gets the trader's updates; an ADMIN-only token gets
        an operator's connection: ``BROKER_STATUS`` broadcasts and the routing status, never
        any trader's orders.

        Parameters
        ----------
        connection_id
            API Gateway's ``requestContext.connectionId``.
        token
            The ``token`` query parameter (browsers cannot set headers on a WebSocket).

        Returns
        -------
        TraderIdentity
            Who connected.

        Raises
        ------
        AuthenticationError
            Invalid token (401); nothing is registered.
        ForbiddenError
            Neither a trader nor an operator (403); nothing is registered.
        IdentityProviderUnavailableError
            The JWKS could not be fetched (503).
        CacheUnavailableError
            Redis is down (503): a connection we cannot push to is refused so the client retries.
        """
        identity = self._verifier.verify(token)
        if TRADER_GROUP in identity.groups:
            self._registry.register(connection_id, identity.user_id)
        else:
            # An operator (ADMIN only): broker status and replies, never a trader's orders.
            self._registry.register(connection_id, identity.user_id, trader=False)
        logger.info(
            "websocket connected",
            extra={"user_id": identity.user_id, "trader": TRADER_GROUP in identity.groups},
        )
        self._publish_active()
        return identity

    def disconnect(self, connection_id: str) -> None:
        """Forget the connection. Never raises: API Gateway ignores the ``$disconnect`` result."""
        try:
            self._registry.remove(connection_id)
        except CacheUnavailableError:
            # The record expires with its 2-hour TTL, and the first push gets GoneException.
            logger.warning("websocket disconnect not recorded: registry unavailable")
            return
        self._publish_active()

    def handle_message(self, connection_id: str, body: str | None) -> None:
        """Answer one client message with a reply to that connection only. Never raises."""
        try:
            self._handle(connection_id, body)
        except CacheUnavailableError:
            self._error(connection_id, "UNAVAILABLE", "try again shortly")

    # Internals ----------------------------------------------------------------------------

    def _handle(self, connection_id: str, body: str | None) -> None:
        if not body or len(body) > MAX_BODY_CHARS:
            self._error(connection_id, "INVALID_MESSAGE", "expected a small JSON object")
            return
        try:
            message = json.loads(body)
            action = _Envelope.model_validate(message).action
        except (ValueError, ValidationError):
            self._error(connection_id, "INVALID_MESSAGE", 'expected JSON with an "action"')
            return
        if action == "ping":
            self._ping(connection_id)
        elif action == "status":
            self._routing_status(connection_id)
        elif action in ("subscribe", "unsubscribe"):
            try:
                filters = _Filters.model_validate(message)
            except ValidationError as exc:
                where = ".".join(str(p) for p in exc.errors()[0]["loc"])
                self._error(connection_id, "INVALID_MESSAGE", f"invalid field {where}")
                return
            self._subscribe(connection_id, filters)
        else:
            self._error(connection_id, "UNKNOWN_ACTION", f"unknown action {action[:32]!r}")

    def _ping(self, connection_id: str) -> None:
        if self._registry.touch(connection_id) is None:
            self._unknown(connection_id)
            return
        self._reply(connection_id, MessageType.PONG, {})

    def _subscribe(self, connection_id: str, filters: _Filters) -> None:
        if filters.action == "subscribe":
            current = self._registry.touch(connection_id)
            if current is None:
                self._unknown(connection_id)
                return
            orders = current.order_ids | set(filters.order_ids or ())
            symbols = current.symbols | set(filters.symbols or ())
            if len(orders) > MAX_ORDER_FILTERS or len(symbols) > MAX_SYMBOL_FILTERS:
                self._error(
                    connection_id,
                    "TOO_MANY_FILTERS",
                    f"at most {MAX_ORDER_FILTERS} orderIds and {MAX_SYMBOL_FILTERS} symbols",
                )
                return
            record = self._registry.subscribe(
                connection_id, order_ids=filters.order_ids or (), symbols=filters.symbols or ()
            )
        else:
            record = self._registry.unsubscribe(
                connection_id, order_ids=filters.order_ids, symbols=filters.symbols
            )
        if record is None:
            self._unknown(connection_id)
            return
        self._reply(
            connection_id,
            MessageType.SUBSCRIBED,
            {"orderIds": sorted(record.order_ids), "symbols": sorted(record.symbols)},
        )

    def _routing_status(self, connection_id: str) -> None:
        record = self._registry.touch(connection_id)
        if record is None:
            self._unknown(connection_id)
            return
        if self._brokers is None or self._orders is None:
            self._error(connection_id, "UNAVAILABLE", "routing status is not available here")
            return
        try:
            brokers = self._brokers.statuses()
            # An operator's connection has no orders of its own to show (and sees no one's).
            orders = (
                self._orders.open_orders(record.user_id, limit=MAX_OPEN_ORDERS)
                if record.trader
                else []
            )
        except DataUnavailableError:
            self._error(connection_id, "UNAVAILABLE", "try again shortly")
            return
        data = {
            "brokers": [b.model_dump(mode="json", by_alias=True) for b in brokers],
            "openOrders": [o.model_dump(mode="json", by_alias=True) for o in orders],
        }
        self._reply(connection_id, MessageType.ROUTING_STATUS, data)

    def _unknown(self, connection_id: str) -> None:
        self._error(connection_id, "UNKNOWN_CONNECTION", "connection expired; reconnect")

    def _error(self, connection_id: str, code: str, message: str) -> None:
        self._reply(connection_id, MessageType.ERROR, {"code": code, "message": message})

    def _reply(
        self, connection_id: str, message_type: MessageType, data: Mapping[str, Any]
    ) -> None:
        self._replies.reply(connection_id, message_type, data)

    def _publish_active(self) -> None:
        try:
            active = self._registry.count_active()
        except CacheUnavailableError:
            return
        # A gauge published on every change: CloudWatch's Maximum/Average over a minute is the
        # number of open connections.
        emit_metric(ACTIVE_CONNECTIONS_METRIC, active, service=self._service_name)
