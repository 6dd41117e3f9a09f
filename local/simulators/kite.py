"""A local Zerodha Kite Connect v3 simulator: the order API, signed postbacks and market data.

Speaks https://kite.trade/docs/connect/v3/orders/ as the adapter does (see
``shared/adapters/brokers/kite.py``): ``X-Kite-Version: 3`` and ``Authorization: token
api_key:access_token`` on every call (403 ``TokenException`` otherwise), form-encoded bodies,
``{"status": "success", "data": ...}`` answers and ``{"status": "error", "message": ...,
"error_type": ...}`` errors, 429 beyond the order rate limits. Postbacks are the order's JSON
with ``checksum`` = SHA-256 hex of ``order_id + order_timestamp + api_secret``, as
https://kite.trade/docs/connect/v3/postbacks/ describes. ``GET /quote?i=EXCHANGE:SYMBOL`` (up
to 500) and ``GET /instruments[/{exchange}]`` (CSV with Kite's columns) serve the simulated
market of ``local/simulators/market.py``, as https://kite.trade/docs/connect/v3/market-quotes/
describes.
"""

# Endpoints are closures over one simulator, each refusing bad calls as the broker does (many
# returns); the default credentials are the simulator's own, not secrets.
# ruff: noqa: C901, PLR0911, PLR0915, S107

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from local.simulators._core import (
    ErrorKind,
    SimOrder,
    Simulator,
    ist_text,
    json_bytes,
    script_route,
)
from local.simulators.market import Listing, SimMarket, default_listings

ORDER_TYPES = {"MARKET", "LIMIT", "SL", "SL-M"}
PRODUCTS = {"CNC", "MIS", "NRML"}
MAX_QUOTES = 500
_TAG = re.compile(r"^[A-Za-z0-9]{1,20}$")

FAILURES: dict[ErrorKind, tuple[int, str, str]] = {
    "token": (403, "TokenException", "Incorrect `api_key` or `access_token`."),
    "permission": (403, "PermissionException", "Insufficient permission for that call."),
    "input": (400, "InputException", "Invalid `quantity`."),
    "order": (400, "OrderException", "Order could not be placed: RMS rule violated."),
    "network": (503, "NetworkException", "Couldn't reach the OMS. Please try again."),
    "server": (500, "GeneralException", "Something went wrong."),
    "rate": (429, "NetworkException", "Too many requests"),
}


class KiteInputError(Exception):
    """A request the real API would refuse with an ``InputException``."""


def _price(form: dict[str, str], key: str, *, required: bool) -> Decimal:
    raw = form.get(key)
    if not raw:
        if required:
            raise KiteInputError(f"Missing `{key}`.")
        return Decimal(0)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise KiteInputError(f"Invalid `{key}`.") from None
    if not value.is_finite() or value < 0:
        raise KiteInputError(f"Invalid `{key}`.")
    return value


class KiteSimulator(Simulator):
    """The Kite order book, its credentials and its postback secret.

    Parameters
    ----------
    api_key, access_token
        What ``Authorization`` must carry.
    api_secret
        The app's secret: the postback checksum's key and the session checksum's.
    redirect_url
        The app's registered redirect URL (the login flow's return).
    postback_url
        Where postbacks go.
    per_second, per_minute
        Order limits (Kite's published 10/s and 200/min by default).
    listings
        The instruments of its market (``local.simulators.market``).
    """

    def __init__(
        self,
        *,
        api_key: str = "kite-key",
        access_token: str = "kite-token",
        api_secret: str = "kite-secret",
        postback_url: str | None = None,
        per_second: int | None = 10,
        per_minute: int | None = 200,
        user_id: str = "AB1234",
        redirect_url: str = "http://127.0.0.1/kite/callback",
        clock: Callable[[], datetime] | None = None,
        listings: Iterable[Listing] | None = None,
    ) -> None:
        super().__init__(
            "2512",
            per_second=per_second,
            per_minute=per_minute,
            postback_url=postback_url,
            clock=clock,
        )
        self.api_key = api_key
        self.access_token = access_token
        self.api_secret = api_secret
        self.user_id = user_id
        self.redirect_url = redirect_url
        """The app's registered redirect URL, where the login page sends the trader back."""
        self.tokens.add(access_token)
        self.market = SimMarket(self.book, self.clock)
        """What ``/quote`` and ``/instruments`` serve (the seed's symbols unless ``listings``)."""
        self.market.add(default_listings() if listings is None else listings)

    def render(self, order: SimOrder) -> dict[str, Any]:
        """Kite's order-book entry."""
        status = order.status
        cancelled = order.quantity - order.filled if status == "CANCELLED" else 0
        pending = order.quantity - order.filled if status == "OPEN" else 0
        return {
            "placed_by": self.user_id,
            "order_id": order.order_id,
            "exchange_order_id": None if status == "REJECTED" else f"1{order.order_id}",
            "parent_order_id": None,
            "status": status,
            "status_message": order.message,
            "status_message_raw": order.message,
            "order_timestamp": ist_text(order.placed_at),
            "exchange_update_timestamp": ist_text(order.updated_at or order.placed_at),
            "exchange_timestamp": ist_text(order.updated_at or order.placed_at),
            "variety": "regular",
            "modified": False,
            "exchange": order.exchange,
            "tradingsymbol": order.symbol,
            "instrument_token": 0,
            "order_type": order.order_type,
            "transaction_type": order.side,
            "validity": order.validity,
            "product": order.product,
            "quantity": order.quantity,
            "disclosed_quantity": 0,
            "price": order.price,
            "trigger_price": order.trigger_price,
            "average_price": order.average_price,
            "filled_quantity": order.filled,
            "pending_quantity": pending,
            "cancelled_quantity": cancelled,
            "market_protection": 0,
            "meta": {},
            "tag": order.tag,
            "guid": f"sim-{order.order_id}",
        }

    def checksum(self, order_id: str, order_timestamp: str) -> str:
        """Kite's postback checksum."""
        return hashlib.sha256(f"{order_id}{order_timestamp}{self.api_secret}".encode()).hexdigest()

    def postback(self, order: SimOrder) -> tuple[bytes, dict[str, str]]:
        """The order's JSON, ``UPDATE`` while working, signed with ``checksum``."""
        body = order.history[-1] | {"user_id": self.user_id, "app_id": 1234, "unfilled_quantity": 0}
        if body["status"] == "OPEN":
            body["status"] = "UPDATE"
        body["checksum"] = self.checksum(body["order_id"], body["order_timestamp"])
        return json_bytes(body), {"Content-Type": "application/json"}


def _error(status: int, error_type: str, message: str) -> Response:
    return JSONResponse(
        {"status": "error", "message": message, "data": None, "error_type": error_type},
        status_code=status,
    )


def _success(data: Any) -> Response:
    return Response(json_bytes({"status": "success", "data": data}), media_type="application/json")


def build_app(sim: KiteSimulator) -> Starlette:
    """The Starlette app of ``sim``."""

    async def gate(request: Request, *, order_call: bool) -> Response | None:
        body = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sim.requests.append((request.method, path, dict(request.headers), body))
        if request.headers.get("x-kite-version") != "3":
            return _error(400, "InputException", "Invalid or missing `X-Kite-Version` header.")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        key, _, token = credentials.partition(":")
        if scheme != "token" or key != sim.api_key or not sim.accepts(token):
            return _error(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        failure = sim.take_failure()
        if failure == "not_json":
            return Response("<html>502 Bad Gateway</html>", 502, media_type="text/html")
        if failure is not None:
            return _error(*FAILURES[failure])
        if order_call and not sim.limiter.allow(sim.access_token):
            return _error(*FAILURES["rate"])
        if request.method in ("POST", "PUT") and not request.headers.get(
            "content-type", ""
        ).startswith("application/x-www-form-urlencoded"):
            return _error(400, "InputException", "Request body must be form-encoded.")
        return None

    async def form_of(request: Request) -> dict[str, str]:
        # The standard library's parser: Starlette's form parsing needs python-multipart.
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))

    def known(order_id: str) -> SimOrder | Response:
        order = sim.book.orders.get(order_id)
        if order is None:
            return _error(400, "InputException", "Invalid `order_id`.")
        return order

    async def place(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        if request.path_params["variety"] != "regular":
            return _error(400, "InputException", "Invalid `variety`.")
        form = await form_of(request)
        try:
            for key in ("tradingsymbol", "exchange", "transaction_type", "order_type", "product"):
                if not form.get(key):
                    raise KiteInputError(f"Missing `{key}`.")
            if form["order_type"] not in ORDER_TYPES or form["product"] not in PRODUCTS:
                raise KiteInputError("Invalid `order_type` or `product`.")
            if form["transaction_type"] not in ("BUY", "SELL"):
                raise KiteInputError("Invalid `transaction_type`.")
            quantity = int(form.get("quantity", "0")) if form.get("quantity", "").isdigit() else 0
            if quantity <= 0:
                raise KiteInputError("Invalid `quantity`.")
            tag = form.get("tag") or None
            if tag is not None and not _TAG.match(tag):
                raise KiteInputError("Invalid `tag`: at most 20 alphanumeric characters.")
            order_type = form["order_type"]
            price = _price(form, "price", required=order_type in ("LIMIT", "SL"))
            trigger = _price(form, "trigger_price", required=order_type in ("SL", "SL-M"))
        except KiteInputError as exc:
            return _error(400, "InputException", str(exc))
        behaviour = sim.book.next_behaviour()
        order = sim.book.create(
            behaviour,
            tag=tag,
            symbol=form["tradingsymbol"],
            exchange=form["exchange"],
            side=form["transaction_type"],
            quantity=quantity,
            order_type=order_type,
            product=form["product"],
            price=price,
            trigger_price=trigger,
            validity=form.get("validity") or "DAY",
        )
        sim.book.run(order)
        if behaviour.ack_delay_s:
            await asyncio.sleep(behaviour.ack_delay_s)
        return _success({"order_id": order.order_id})

    async def modify(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        order = known(request.path_params["order_id"])
        if isinstance(order, Response):
            return order
        if order.status != "OPEN":
            return _error(
                400, "InputException", f"Order cannot be modified as it is {order.status}."
            )
        form = await form_of(request)
        quantity = form.get("quantity")
        try:
            price = _price(form, "price", required=False) if "price" in form else None
            trigger = (
                _price(form, "trigger_price", required=False) if "trigger_price" in form else None
            )
        except KiteInputError as exc:
            return _error(400, "InputException", str(exc))
        if quantity is not None and (not quantity.isdigit() or int(quantity) < order.filled):
            return _error(400, "InputException", "Invalid `quantity`.")
        sim.book.modify(
            order,
            quantity=int(quantity) if quantity else None,
            price=price,
            trigger_price=trigger,
            order_type=form.get("order_type"),
        )
        return _success({"order_id": order.order_id})

    async def cancel(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        order = known(request.path_params["order_id"])
        if isinstance(order, Response):
            return order
        if order.status != "OPEN":
            return _error(
                400, "InputException", f"Order cannot be cancelled as it is {order.status}."
            )
        sim.book.cancel(order)
        return _success({"order_id": order.order_id})

    async def history(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        order = known(request.path_params["order_id"])
        if isinstance(order, Response):
            return order
        return _success(order.history)

    async def orders(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        return _success([o.history[-1] for o in sim.book.orders.values()])

    async def login(request: Request) -> Response:
        # The trader "logs in" at once: the page hands back a request token and, unchanged,
        # the app's redirect_params (where our OAuth state travels).
        if request.query_params.get("api_key") != sim.api_key:
            return _error(400, "InputException", "Invalid `api_key`.")
        query = {"action": "login", "type": "login", "status": "success"}
        query["request_token"] = sim.issue_grant()
        extra = dict(parse_qsl(request.query_params.get("redirect_params", "")))
        return RedirectResponse(f"{sim.redirect_url}?{urlencode(query | extra)}", status_code=302)

    async def session_token(request: Request) -> Response:
        body = await request.body()
        sim.requests.append((request.method, request.url.path, dict(request.headers), body))
        if request.headers.get("x-kite-version") != "3":
            return _error(400, "InputException", "Invalid or missing `X-Kite-Version` header.")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        for key in ("api_key", "request_token", "checksum"):
            if not form.get(key):
                return _error(400, "InputException", f"Missing `{key}`.")
        if form["api_key"] != sim.api_key:
            return _error(403, "TokenException", "Invalid `api_key`.")
        expected = hashlib.sha256(
            f"{sim.api_key}{form['request_token']}{sim.api_secret}".encode()
        ).hexdigest()
        if not hmac.compare_digest(form["checksum"], expected):
            return _error(403, "TokenException", "Invalid `checksum`.")
        if not sim.redeem_grant(form["request_token"]):
            return _error(403, "TokenException", "Token is invalid or has expired.")
        token = sim.issue_token()
        return _success(
            {
                "user_type": "individual",
                "email": "trader@example.com",
                "user_name": "Simulated Trader",
                "user_shortname": "Trader",
                "broker": "ZERODHA",
                "exchanges": ["NSE", "BSE"],
                "products": ["CNC", "NRML", "MIS"],
                "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
                "user_id": sim.user_id,
                "api_key": sim.api_key,
                "access_token": token,
                "public_token": secrets.token_hex(16),
                "refresh_token": "",
                "login_time": ist_text(sim.clock()),
                "avatar_url": None,
            }
        )

    async def quote(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        wanted = request.query_params.getlist("i")
        if not wanted:
            return _error(400, "InputException", "No instruments specified.")
        if len(wanted) > MAX_QUOTES:
            return _error(400, "InputException", f"At most {MAX_QUOTES} instruments.")
        data = {}
        for key in wanted:
            exchange, _, symbol = key.partition(":")
            found = sim.market.quote(exchange, symbol)
            if found is not None:
                data[key] = found
        return _success(data)

    async def instruments(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        exchange = request.path_params.get("exchange")
        return Response(sim.market.dump(exchange), media_type="text/csv")

    return Starlette(
        routes=[
            script_route(sim),
            Route("/connect/login", login, methods=["GET"]),
            Route("/session/token", session_token, methods=["POST"]),
            Route("/quote", quote, methods=["GET"]),
            Route("/instruments", instruments, methods=["GET"]),
            Route("/instruments/{exchange}", instruments, methods=["GET"]),
            Route("/orders", orders, methods=["GET"]),
            Route("/orders/{order_id}", history, methods=["GET"]),
            Route("/orders/{variety}", place, methods=["POST"]),
            Route("/orders/{variety}/{order_id}", modify, methods=["PUT"]),
            Route("/orders/{variety}/{order_id}", cancel, methods=["DELETE"]),
        ]
    )
