"""What every broker simulator shares.

An order book with scripted behaviour, rate limits, error injection, postback delivery and a
server that runs on a given port.

Each broker module (``kite``, ``upstox``, ``dhan``) speaks its broker's HTTP contract on top of
this: its paths, headers, bodies, labels, error envelopes and postback format and signature.
Behaviour is set per simulator (``sim.behaviour``) or per next order (``sim.script(...)``), and
``sim.fail_next(kind)`` makes the next API call answer with that error family.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

logger = logging.getLogger("order_router.local.simulators")

IST = timezone(timedelta(hours=5, minutes=30), "IST")

Outcome = Literal["fill", "partial", "reject", "open"]
ErrorKind = Literal[
    "token", "permission", "input", "order", "network", "server", "rate", "not_json"
]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the simulated broker does with one order.

    ``fill``: filled at once; ``partial``: ``partial_fraction`` filled, the rest stays open;
    ``reject``: accepted then rejected by the broker's risk checks (``reject_reason``);
    ``open``: accepted and left open (to be modified or cancelled).
    """

    outcome: Outcome = "fill"
    partial_fraction: float = 0.5
    fill_price: Decimal = Decimal("100.00")
    reject_reason: str = "RMS: insufficient funds"
    ack_delay_s: float = 0.0
    """Answer the placement this late (the order exists meanwhile): a client timeout."""
    withhold_postback: bool = False
    """Send no postback for this order (to be recovered by polling)."""


@dataclass(slots=True)
class SimOrder:
    """One order in the simulated book, broker-neutral."""

    order_id: str
    tag: str | None
    symbol: str
    exchange: str
    side: str
    quantity: int
    order_type: str
    product: str
    price: Decimal
    trigger_price: Decimal
    validity: str
    behaviour: Behaviour
    placed_at: datetime
    status: str = "OPEN"
    """Neutral label: OPEN, COMPLETE, CANCELLED, REJECTED."""
    filled: int = 0
    average_price: Decimal = Decimal(0)
    message: str | None = None
    updated_at: datetime | None = None
    instrument: str = ""
    """The broker's instrument reference (Upstox instrument key, Dhan security id)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Each state as the broker's order book renders it, oldest first."""


def ist_text(moment: datetime) -> str:
    """``2021-05-31 09:18:57``: how Indian brokers write times (IST, no offset)."""
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


class RateLimiter:
    """Sliding windows per key.

    At most ``per_second`` calls in any second and ``per_minute`` in any minute (``None``:
    unlimited).
    """

    def __init__(self, per_second: int | None, per_minute: int | None) -> None:
        self.per_second = per_second
        self.per_minute = per_minute
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one call now unless it would exceed a limit."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and now - calls[0] >= 60:
                calls.popleft()
            last_second = sum(1 for t in calls if now - t < 1)
            if self.per_second is not None and last_second >= self.per_second:
                return False
            if self.per_minute is not None and len(calls) >= self.per_minute:
                return False
            calls.append(now)
            return True


class PostbackSender:
    """Delivers postbacks in order from one background thread, as a broker does."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int | str]] = []
        """``(url, body, HTTP status or error)`` of every delivery attempt."""
        self._queue: queue.Queue[tuple[str, bytes, dict[str, str], float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="postbacks", daemon=True)
        self._thread.start()

    def send(
        self, url: str, body: bytes, headers: Mapping[str, str], *, delay_s: float = 0.0
    ) -> None:
        """Queue one postback, to go out ``delay_s`` from now at the earliest."""
        self._queue.put((url, body, dict(headers), time.monotonic() + delay_s))

    def close(self) -> None:
        """Stop the delivery thread after the queued postbacks."""
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    url, body, headers, not_before = item
                    time.sleep(max(0.0, not_before - time.monotonic()))
                    try:
                        status: int | str = client.post(
                            url, content=body, headers=headers
                        ).status_code
                    except httpx.HTTPError as exc:
                        status = f"{type(exc).__name__}: {exc}"
                        logger.warning("postback to %s failed: %s", url, status)
                    self.sent.append((url, body, status))
                finally:
                    self._queue.task_done()


class OrderBook:
    """A broker's order book, neutral: the broker module renders and parses its own formats.

    Parameters
    ----------
    prefix
        Start of the order ids (digits, like the real brokers' ids).
    render
        Renders an order's current state as the broker's order book entry.
    on_change
        Called after each state change (the broker module sends its postback from here).
    clock
        Current time.
    """

    def __init__(
        self,
        prefix: str,
        *,
        render: Callable[[SimOrder], dict[str, Any]],
        on_change: Callable[[SimOrder], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.behaviour = Behaviour()
        self.orders: dict[str, SimOrder] = {}
        self._prefix = prefix
        self._render = render
        self._on_change = on_change
        self._clock = clock
        self._sequence = 0
        self._scripted: deque[Behaviour] = deque()
        self.prices: dict[str, Decimal] = {}
        """Fill price per symbol (local mode's market); the behaviour's ``fill_price`` else."""
        self._lock = threading.Lock()

    def script(self, *behaviours: Behaviour) -> None:
        """Use these behaviours for the next orders, in turn, then ``self.behaviour`` again."""
        with self._lock:
            self._scripted.extend(behaviours)

    def next_behaviour(self) -> Behaviour:
        """The behaviour of the order being placed now."""
        with self._lock:
            return self._scripted.popleft() if self._scripted else self.behaviour

    def create(self, behaviour: Behaviour, **fields: Any) -> SimOrder:
        """Book a new order (status OPEN, no postback yet: :meth:`run` plays its behaviour)."""
        with self._lock:
            self._sequence += 1
            order_id = f"{self._prefix}{self._sequence:06d}"
        order = SimOrder(order_id=order_id, behaviour=behaviour, placed_at=self._clock(), **fields)
        order.updated_at = order.placed_at
        order.history.append(self._render(order))
        self.orders[order_id] = order
        return order

    def _change(self, order: SimOrder, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(order, name, value)
        order.updated_at = self._clock()
        order.history.append(self._render(order))
        if not order.behaviour.withhold_postback:
            self._on_change(order)

    def run(self, order: SimOrder) -> None:
        """Play the order's behaviour: fill, partly fill, reject, or leave it open."""
        b = order.behaviour
        price = self.prices.get(order.symbol, b.fill_price)
        if b.outcome == "reject":
            self._change(order, status="REJECTED", message=b.reject_reason)
        elif b.outcome == "fill":
            self._change(order, status="COMPLETE", filled=order.quantity, average_price=price)
        elif b.outcome == "partial":
            filled = max(1, min(order.quantity - 1, int(order.quantity * b.partial_fraction)))
            self._change(order, filled=filled, average_price=price)

    def modify(self, order: SimOrder, **changes: Any) -> None:
        """Change an open order's fields (a new order-book state and postback)."""
        self._change(order, **{k: v for k, v in changes.items() if v is not None})

    def cancel(self, order: SimOrder) -> None:
        """Cancel an open order's remaining quantity."""
        self._change(order, status="CANCELLED", message="Cancelled by user")


class Simulator:
    """State shared by the broker simulators: book, limits, injected errors, postbacks.

    Parameters
    ----------
    prefix
        Start of order ids.
    per_second, per_minute
        Order-API rate limits per access token (429 beyond them).
    postback_url
        Where postbacks go (``None``: none are sent).
    clock
        Current time (UTC).
    """

    def __init__(
        self,
        prefix: str,
        *,
        per_second: int | None,
        per_minute: int | None,
        postback_url: str | None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.book = OrderBook(prefix, render=self.render, on_change=self._changed, clock=self.clock)
        self.limiter = RateLimiter(per_second, per_minute)
        self.postback_url = postback_url
        self.postback_delay_s = 0.0
        """How long after a state change its postback leaves (a real broker's postback follows
        its order acknowledgement; local mode waits a little so ours is recorded first)."""
        self.postbacks = PostbackSender()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        """``(method, path with query, headers, body)`` of every API call received."""
        self._failures: deque[ErrorKind] = deque()
        self._lock = threading.Lock()
        self.tokens: set[str] = set()
        """Access tokens the order API accepts (the configured one, and those a login issued)."""
        self.grants: dict[str, str] = {}
        """Single-use login grants (Kite request tokens, Upstox codes) not yet exchanged."""

    def accepts(self, token: str | None) -> bool:
        """Whether ``token`` is a live access token of this simulated account."""
        return token is not None and token in self.tokens

    def issue_grant(self) -> str:
        """A single-use login grant, as the broker's login page hands the trader back."""
        grant = secrets.token_urlsafe(24)
        with self._lock:
            self.grants[grant] = self.clock().isoformat()
        return grant

    def redeem_grant(self, grant: str) -> bool:
        """Consume a grant: ``True`` once, then ``False`` (used, or never issued)."""
        with self._lock:
            return self.grants.pop(grant, None) is not None

    def issue_token(self) -> str:
        """A new access token for this account (a session exchange)."""
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return token

    def revoke(self, token: str) -> None:
        """Make ``token`` invalid, as the broker does each morning or on logout."""
        self.tokens.discard(token)

    @property
    def behaviour(self) -> Behaviour:
        """The default behaviour of new orders."""
        return self.book.behaviour

    @behaviour.setter
    def behaviour(self, value: Behaviour) -> None:
        self.book.behaviour = value

    def script(self, *behaviours: Behaviour) -> None:
        """Behaviours of the next orders, in turn."""
        self.book.script(*behaviours)

    def fail_next(self, *kinds: ErrorKind) -> None:
        """Answer the next API calls with these error families, in turn."""
        with self._lock:
            self._failures.extend(kinds)

    def take_failure(self) -> ErrorKind | None:
        """The error family the current call must answer with, if one is queued."""
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def render(self, order: SimOrder) -> dict[str, Any]:
        """The order as this broker's order book shows it."""
        raise NotImplementedError

    def postback(self, order: SimOrder) -> tuple[bytes, dict[str, str]] | None:
        """The broker's postback body and headers for the order's new state."""
        raise NotImplementedError

    def _changed(self, order: SimOrder) -> None:
        if self.postback_url is None:
            return
        built = self.postback(order)
        if built is not None:
            body, headers = built
            self.postbacks.send(self.postback_url, body, headers, delay_s=self.postback_delay_s)

    def close(self) -> None:
        """Stop delivering postbacks."""
        self.postbacks.close()


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A simulator served on loopback by uvicorn in a background thread."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(app: Starlette, port: int, *, host: str = "127.0.0.1") -> RunningServer:
    """Serve ``app`` on ``host:port`` in a background thread; return once it accepts calls.

    Raises
    ------
    RuntimeError
        When the server did not start within 10 s (the port is taken, say).
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only from the main thread, so this one leaves them be.
    thread = threading.Thread(target=server.run, name=f"simulator-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"simulator did not start on {host}:{port}")
        time.sleep(0.01)
    return RunningServer(url=f"http://{host}:{port}", server=server, thread=thread)


def request_price(value: Any) -> Decimal:
    """A price field of a JSON order request (absent: 0); ``ValueError`` if it is none."""
    try:
        number = Decimal(str(value if value is not None else 0))
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError("not a price")
    return number


def json_bytes(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON with decimals as numbers, as the brokers send them."""
    return json.dumps(payload, default=_number, separators=(",", ":")).encode()


def _number(value: object) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


__all__ = [
    "IST",
    "Behaviour",
    "ErrorKind",
    "OrderBook",
    "PostbackSender",
    "RateLimiter",
    "RunningServer",
    "SimOrder",
    "Simulator",
    "free_port",
    "ist_text",
    "json_bytes",
    "serve",
]


SCRIPT_PATH = "/_sim/script"
"""The simulators' own control route (no broker has it): script the next orders' behaviours."""


def script_route(sim: Simulator) -> Route:
    """``POST /_sim/script`` with ``[{"outcome": "open", "ack_delay_s": 3}, ...]``.

    Local mode's way to make a broker answer late, part-fill or withhold a postback while one
    watches (docs/local-mode.md). Fields are those of :class:`Behaviour` except ``fill_price``
    (orders fill at the local market price); anything else is a 400.
    """

    async def script(request: Request) -> Response:
        try:
            entries = json.loads(await request.body())
            if not isinstance(entries, list):
                raise TypeError("a JSON list of behaviours")
            behaviours = [_behaviour(entry) for entry in entries]
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        sim.script(*behaviours)
        return JSONResponse({"scripted": len(behaviours)})

    return Route(SCRIPT_PATH, script, methods=["POST"])


_SCRIPTABLE = {"outcome", "partial_fraction", "reject_reason", "ack_delay_s", "withhold_postback"}


def _behaviour(entry: object) -> Behaviour:
    if not isinstance(entry, dict) or not set(entry) <= _SCRIPTABLE:
        raise TypeError(f"each behaviour is an object of {sorted(_SCRIPTABLE)}")
    if entry.get("outcome", "fill") not in ("fill", "partial", "reject", "open"):
        raise ValueError("outcome is one of fill, partial, reject, open")
    return Behaviour(**entry)
