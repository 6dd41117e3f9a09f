"""Pushes to WebSocket clients through the API Gateway management API (``POST /@connections/{id}``).

Messages: ``{"type": "ROUTING_UPDATE" | "EXECUTION_UPDATE" | "PROFILE_UPDATE", "data": {...},
"timestamp": "<ISO-8601 UTC>"}``; direct replies (``PONG``, ``SUBSCRIBED``, ``ERROR``) use the same
envelope. A push never raises: a trader's dead socket must not fail routing or tracking.

* ``GoneException`` (410): the client went away without a ``$disconnect`` we saw; the connection
  is removed from the registry.
* Any other failure (throttling, a timeout, a missing endpoint, Redis down): logged and counted
  with the ``WebSocketPushFailures`` metric (namespace ``OrderRouter``).
* Size: API Gateway refuses messages over 128 KB. An oversize update is truncated: its bulkiest
  top-level fields (lists, objects, long strings) are dropped, largest first, until it fits, and
  ``data`` gets ``"truncated": true`` and ``"omitted": [names]``; identifiers and scalars stay, so
  the client can fetch the full view over REST. If it still does not fit, it is not sent.
* Fan-out to several connections runs on a small thread pool: each post is an HTTPS round trip,
  and boto3 clients are thread-safe.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from shared.adapters.redis.connections import RedisConnectionRegistry
from shared.domain.connections import ConnectionRecord
from shared.domain.contracts import UPDATE_MESSAGES, MessageType
from shared.domain.errors import CacheUnavailableError
from shared.observability import emit_metric
from shared.ports import UserMessage

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 128 * 1024
"""API Gateway's WebSocket message limit (``postToConnection`` returns 413 above it)."""
PUSH_FAILURES_METRIC = "WebSocketPushFailures"
_LONG_STRING_CHARS = 256

Outcome = Literal["sent", "gone", "failed"]


def _json_default(value: Any) -> Any:
    # Money and prices stay exact as strings (docs/architecture.md §3: never float at the edges).
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(
        message, default=_json_default, ensure_ascii=False, separators=(",", ":")
    ).encode()


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``, e.g. ``2026-11-24T10:00:00.123Z``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_message(
    message_type: MessageType,
    data: Mapping[str, Any],
    *,
    now: datetime | None = None,
    limit: int = MAX_MESSAGE_BYTES,
) -> bytes | None:
    """The JSON envelope of one message, truncated to fit ``limit`` bytes.

    Parameters
    ----------
    message_type
        ``ROUTING_UPDATE``, ``EXECUTION_UPDATE``, ``PROFILE_UPDATE`` or a reply type.
    data
        The payload; Decimals become strings, datetimes ISO-8601.
    now
        Timestamp of the message (the current time when omitted).
    limit
        Maximum size of the encoded message in bytes.

    Returns
    -------
    bytes | None
        The UTF-8 JSON; ``None`` when even the truncated message exceeds ``limit``.
    """
    timestamp = utc_timestamp(now)
    body = _encode({"type": message_type, "data": data, "timestamp": timestamp})
    if len(body) <= limit:
        return body
    # Drop the bulkiest top-level fields first: they are the lists (allocations, broker scores)
    # a client can re-read over REST, while ids, status and prices are what it needs right now.
    trimmed = dict(data)
    sizes = {
        name: len(_encode({"v": value}))
        for name, value in trimmed.items()
        if isinstance(value, list | tuple | dict | set | frozenset)
        or (isinstance(value, str) and len(value) > _LONG_STRING_CHARS)
    }
    omitted: list[str] = []
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        del trimmed[name]
        omitted.append(name)
        body = _encode(
            {
                "type": message_type,
                "data": {**trimmed, "truncated": True, "omitted": sorted(omitted)},
                "timestamp": timestamp,
            }
        )
        if len(body) <= limit:
            return body
    return None


class ApiGatewayNotifier:
    """:class:`shared.ports.Notifier` over the API Gateway management API.

    Parameters
    ----------
    registry
        Where the user's connections and filters are found, and gone ones removed.
    endpoint_url
        ``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`` in AWS; the local
        WebSocket server's URL in local mode (``Settings.ws_management_endpoint``).
    region
        AWS region of the API.
    client
        A ready ``apigatewaymanagementapi`` client (tests, benchmarks); otherwise one is created
        on first use.
    max_workers
        Threads used to fan one message out to several connections.
    service_name
        The ``service`` dimension of the failure metric.
    """

    def __init__(
        self,
        registry: RedisConnectionRegistry,
        *,
        endpoint_url: str | None,
        region: str,
        client: ApiGatewayManagementApiClient | None = None,
        max_workers: int = 8,
        service_name: str = "order-router",
    ) -> None:
        self._registry = registry
        self._endpoint_url = endpoint_url
        self._region = region
        self._client = client
        self._max_workers = max(1, max_workers)
        self._service_name = service_name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # Notifier port ------------------------------------------------------------------------

    def notify_user(self, user_id: str, message_type: MessageType, data: Mapping[str, Any]) -> int:
        """Push one update to every connection of ``user_id`` whose filters accept it.

        Parameters
        ----------
        user_id
            The owner; nobody else's connections are considered.
        message_type
            ``ROUTING_UPDATE``, ``EXECUTION_UPDATE`` or ``PROFILE_UPDATE``.
        data
            The update.

        Returns
        -------
        int
            How many connections received it (0 on any failure; never raises).
        """
        return self.notify_users([(user_id, message_type, data)])

    def notify_users(self, messages: Sequence[UserMessage]) -> int:
        """Push several updates, reading each distinct user's connections once.

        A batch of execution reports mostly concerns a handful of traders, so the registry is
        asked once per trader rather than once per message.

        Parameters
        ----------
        messages
            ``(user_id, message_type, data)`` in the order they are pushed.

        Returns
        -------
        int
            How many deliveries succeeded (never raises).
        """
        try:
            connections = {
                user_id: self._registry.connections_of(user_id)
                for user_id in sorted({user_id for user_id, _, _ in messages})
            }
        except CacheUnavailableError:
            logger.warning("websocket push skipped: registry unavailable", exc_info=True)
            self._count_failures(len(messages))
            return 0
        return sum(
            self._fan_out([r for r in connections[user_id] if r.wants(data)], message_type, data)
            for user_id, message_type, data in messages
        )

    def notify_symbol_subscribers(
        self, symbol: str, message_type: MessageType, data: Mapping[str, Any]
    ) -> int:
        """Push one update (``PROFILE_UPDATE``) to every connection subscribed to ``symbol``.

        Returns
        -------
        int
            How many connections received it (never raises).
        """
        try:
            records = self._registry.subscribers_of_symbol(symbol)
        except CacheUnavailableError:
            logger.warning("websocket push skipped: registry unavailable", exc_info=True)
            self._count_failures(1)
            return 0
        return self._fan_out(records, message_type, data)

    def notify_all(self, message_type: MessageType, data: Mapping[str, Any]) -> int:
        """Push one update (``BROKER_STATUS``) to every live connection, filters aside.

        Returns
        -------
        int
            How many connections received it (never raises).
        """
        try:
            records = self._registry.live_connections()
        except CacheUnavailableError:
            logger.warning("websocket broadcast skipped: registry unavailable", exc_info=True)
            self._count_failures(1)
            return 0
        return self._fan_out(records, message_type, data)

    def reply(self, connection_id: str, message_type: MessageType, data: Mapping[str, Any]) -> bool:
        """Send a direct reply (``PONG``, ``SUBSCRIBED``, ``ERROR``) to one connection.

        Returns
        -------
        bool
            Whether it was delivered (never raises).
        """
        body = encode_message(message_type, data)
        if body is None:
            logger.error("websocket %s reply not sent: over the size limit", message_type)
            self._count_failures(1)
            return False
        outcome = self._send(connection_id, body)
        if outcome == "failed":
            self._count_failures(1)
        return outcome == "sent"

    # Internals ----------------------------------------------------------------------------

    def _fan_out(
        self, records: list[ConnectionRecord], message_type: MessageType, data: Mapping[str, Any]
    ) -> int:
        if not records:
            return 0
        if message_type not in UPDATE_MESSAGES:
            logger.error("websocket push refused: unknown message type %s", message_type)
            self._count_failures(len(records))
            return 0
        try:
            body = encode_message(message_type, data)
        except (TypeError, ValueError):
            logger.exception("websocket push refused: data is not JSON serialisable")
            self._count_failures(len(records))
            return 0
        if body is None:
            logger.error(
                "websocket push refused: %s over %d bytes even truncated",
                message_type,
                MAX_MESSAGE_BYTES,
            )
            self._count_failures(len(records))
            return 0
        ids = [r.connection_id for r in records]
        if len(ids) == 1:
            outcomes = [self._send(ids[0], body)]
        else:
            outcomes = list(self._executor().map(lambda cid: self._send(cid, body), ids))
        failed = outcomes.count("failed")
        if failed:
            self._count_failures(failed)
        return outcomes.count("sent")

    def _send(self, connection_id: str, body: bytes) -> Outcome:
        try:
            self._management_client().post_to_connection(ConnectionId=connection_id, Data=body)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "GoneException":
                self._forget(connection_id)
                return "gone"
            logger.warning("websocket push to %s failed: %s", connection_id, code or exc)
            return "failed"
        except (BotoCoreError, ValueError) as exc:
            # ValueError: no endpoint configured; BotoCoreError: timeouts, connection errors.
            logger.warning("websocket push to %s failed: %s", connection_id, exc)
            return "failed"
        return "sent"

    def _forget(self, connection_id: str) -> None:
        try:
            self._registry.remove(connection_id)
        except CacheUnavailableError:
            # The record expires with its TTL; the next push retries the removal.
            logger.warning("gone connection %s not removed: registry unavailable", connection_id)

    def _management_client(self) -> ApiGatewayManagementApiClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    if not self._endpoint_url:
                        raise ValueError("ws_management_endpoint is not configured")
                    # A session of our own: boto3's default session is not safe to create
                    # from several threads, the client itself is.
                    self._client = boto3.session.Session().client(
                        "apigatewaymanagementapi",
                        endpoint_url=self._endpoint_url,
                        region_name=self._region,
                        config=Config(
                            connect_timeout=1,
                            read_timeout=2,
                            retries={"max_attempts": 2, "mode": "standard"},
                            max_pool_connections=max(10, self._max_workers),
                        ),
                    )
        return self._client

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=self._max_workers, thread_name_prefix="ws-push"
                    )
        return self._pool

    def _count_failures(self, count: int) -> None:
        # Published at once: the notifier runs inside other functions' handlers and must not
        # depend on their @log_metrics decorator to publish its failures.
        emit_metric(PUSH_FAILURES_METRIC, count, service=self._service_name)
