"""The local WebSocket API: sockets in, ``ws_connect`` invocations out, pushes via a registry.

What API Gateway's WebSocket API does, this server does for ``functions.ws_connect``:

* a handshake becomes a ``$connect`` event with a fresh connection id and the ``token`` query
  parameter; a non-200 answer refuses the handshake with that HTTP status;
* each client message becomes a ``$default`` event; the handler's answer is discarded (replies
  travel through the management API, as in AWS);
* a closed socket becomes a ``$disconnect`` event.

The management API (``POST``/``GET``/``DELETE /@connections/{id}``) is served by the HTTP server
(it needs request bodies, which the websockets handshake parser does not read) and reaches the
sockets through :class:`LiveConnections`, shared in the same process and event loop.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from local.apigw import websocket_event

logger = logging.getLogger("order_router.local.ws")

MAX_MESSAGE_BYTES = 128 * 1024
"""API Gateway's WebSocket message limit."""
OPEN_WAIT_S = 2.0
"""How long a push waits for a socket whose ``$connect`` succeeded but whose handshake is still
being written; without it the push would answer 410 and the notifier would drop the connection."""

Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters ending in ``=``, URL-safe here)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


@dataclass
class LiveConnection:
    """One socket as the management API sees it."""

    connection_id: str
    source_ip: str
    user_agent: str
    connected_at: datetime
    last_active_at: datetime
    socket: ServerConnection | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)


class LiveConnections:
    """Sockets by connection id; used only from the event loop thread, so it needs no lock."""

    def __init__(self) -> None:
        self._by_id: dict[str, LiveConnection] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, connection: LiveConnection) -> None:
        """Register a connection whose ``$connect`` is being decided."""
        self._by_id[connection.connection_id] = connection

    def opened(self, connection_id: str, socket: ServerConnection) -> None:
        """The handshake completed: pushes may now be written to ``socket``."""
        live = self._by_id.get(connection_id)
        if live is not None:
            live.socket = socket
            live.opened.set()

    def remove(self, connection_id: str) -> None:
        """Forget a connection (refused, closed or deleted)."""
        self._by_id.pop(connection_id, None)

    def get(self, connection_id: str) -> LiveConnection | None:
        """The connection or ``None``."""
        return self._by_id.get(connection_id)

    def touch(self, connection_id: str) -> None:
        """Record client activity (``LastActiveAt``)."""
        live = self._by_id.get(connection_id)
        if live is not None:
            live.last_active_at = datetime.now(UTC)

    async def send(self, connection_id: str, data: bytes) -> bool:
        """Write one message; ``False`` when the connection is gone (the API answers 410)."""
        live = await self._open(connection_id)
        if live is None or live.socket is None:
            return False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            await live.socket.send(data)
        else:
            # API Gateway delivers management API posts as text frames.
            await live.socket.send(text)
        return True

    async def close(self, connection_id: str) -> bool:
        """Close a connection (``DELETE /@connections/{id}``); ``False`` when it is gone."""
        live = await self._open(connection_id)
        if live is None or live.socket is None:
            return False
        await live.socket.close(1000, "closed by the management API")
        return True

    async def _open(self, connection_id: str) -> LiveConnection | None:
        live = self._by_id.get(connection_id)
        if live is None:
            return None
        if not live.opened.is_set():
            try:
                await asyncio.wait_for(live.opened.wait(), OPEN_WAIT_S)
            except TimeoutError:
                return None
        return live


class WebSocketGateway:
    """The WebSocket server in front of ``ws_connect``.

    Parameters
    ----------
    invoke
        ``await invoke("ws_connect", event)`` runs the handler off the event loop.
    connections
        The registry shared with the management API.
    host, port
        Where to listen (always loopback in local mode).
    """

    def __init__(
        self, invoke: Invoke, connections: LiveConnections, *, host: str, port: int
    ) -> None:
        self._invoke = invoke
        self._connections = connections
        self._host = host
        self._port = port
        self._ids: dict[ServerConnection, str] = {}
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen (raises ``OSError`` when the port is taken)."""
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_response=self._connect,
            max_size=MAX_MESSAGE_BYTES,
            server_header="order-router-local",
        )

    async def stop(self) -> None:
        """Close every socket (each gets its ``$disconnect``) and stop listening."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    async def _connect(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        # After the handshake was validated (a plain HTTP GET never reaches $connect), before the
        # 101 is written: the handler decides, as API Gateway lets $connect decide.
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            return None
        connection_id = new_connection_id()
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        query = dict(parse_qsl(urlsplit(request.path).query))
        source_ip = str(connection.remote_address[0]) if connection.remote_address else ""
        now = datetime.now(UTC)
        self._connections.add(
            LiveConnection(
                connection_id=connection_id,
                source_ip=source_ip,
                user_agent=headers.get("user-agent", ""),
                connected_at=now,
                last_active_at=now,
            )
        )
        event = websocket_event(
            "$connect",
            connection_id,
            connected_at_ms=int(now.timestamp() * 1000),
            query=query or None,
            headers=headers,
            source_ip=source_ip,
            domain_name=headers.get("host", self._host),
        )
        status = _status_of(await self._call(event))
        if status != HTTPStatus.OK:
            self._connections.remove(connection_id)
            logger.info("websocket $connect refused with %d", status)
            return connection.respond(status, f"{_reason(status)}\n")
        self._ids[connection] = connection_id
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        connection_id = self._ids.pop(connection)
        self._connections.opened(connection_id, connection)
        live = self._connections.get(connection_id)
        connected_at_ms = int(live.connected_at.timestamp() * 1000) if live else 0
        request = connection.request
        headers = (
            {name.lower(): value for name, value in request.headers.raw_items()} if request else {}
        )
        try:
            async for message in connection:
                self._connections.touch(connection_id)
                body = message if isinstance(message, str) else message.decode("utf-8", "replace")
                await self._call(
                    websocket_event(
                        "$default", connection_id, connected_at_ms=connected_at_ms, body=body
                    )
                )
        except ConnectionClosed:
            pass
        finally:
            self._connections.remove(connection_id)
            await self._call(
                websocket_event(
                    "$disconnect",
                    connection_id,
                    connected_at_ms=connected_at_ms,
                    headers=headers,
                    disconnect_status_code=connection.close_code or 1006,
                )
            )

    async def _call(self, event: dict[str, Any]) -> Any:
        started = time.perf_counter()
        route = event["requestContext"]["routeKey"]
        try:
            result = await self._invoke("ws_connect", event)
        except Exception:  # a crashing handler is a 500, as API Gateway reports it
            logger.exception("ws_connect failed on %s", route)
            return {"statusCode": 500}
        logger.info(
            "WS %s %s -> %s (%.0f ms)",
            route,
            event["requestContext"]["connectionId"],
            _status_of(result),
            (time.perf_counter() - started) * 1000,
        )
        return result


def _status_of(result: Any) -> int:
    if isinstance(result, Mapping):
        try:
            return int(result.get("statusCode", 200))
        except (TypeError, ValueError):
            return 500
    return 200


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
