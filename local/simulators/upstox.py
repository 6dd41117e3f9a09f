"""A local Upstox simulator: the v3 order API, the v2 order-book reads and order webhooks.

Speaks what ``shared/adapters/brokers/upstox.py`` speaks (Upstox's documented contract):
``Authorization: Bearer <token>`` (401 ``UDAPI100050`` otherwise), JSON bodies,
``{"status": "success", "data": ..., "metadata": {"latency": ...}}`` answers, ``{"status":
"error", "errors": [{"errorCode", "message", ...}]}`` errors, 429 ``UDAPI10005`` beyond the rate
limits. Webhooks are the order's JSON with ``update_type: "order"``, unsigned, posted to a URL
that carries the secret path token (Upstox does not sign its webhooks).

Refusals of one order come with endpoint-specific codes in Upstox's documentation; the ``order``
failure uses one such 4xx answer shape with an illustrative code (``UDAPI1023``).
"""

# Endpoints are closures over one simulator, each refusing bad calls as the broker does (many
# returns); the default credentials are the simulator's own, not secrets.
# ruff: noqa: C901, PLR0911, PLR0915, S107

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import datetime
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
    request_price,
    script_route,
)

LABELS = {"OPEN": "open", "COMPLETE": "complete", "CANCELLED": "cancelled", "REJECTED": "rejected"}
ORDER_TYPES = {"MARKET", "LIMIT", "SL", "SL-M"}
PRODUCTS = {"D", "I", "MTF"}

FAILURES: dict[ErrorKind, tuple[int, str, str]] = {
    "token": (401, "UDAPI100050", "Invalid token used to access API"),
    "permission": (403, "UDAPI100073", "Your 'client_id' is inactive."),
    "input": (400, "UDAPI100036", "Invalid Input"),
    "order": (400, "UDAPI1023", "Order refused by the broker's risk checks (simulated)"),
    "network": (503, "UDAPI100500", "Something went wrong... please contact us"),
    "server": (500, "UDAPI100500", "Something went wrong... please contact us"),
    "rate": (429, "UDAPI10005", "Too Many Request Sent"),
}


class UpstoxSimulator(Simulator):
    """The Upstox order book.

    Parameters
    ----------
    access_token
        What the bearer token must be.
    instruments
        Instrument key -> ``(exchange, symbol)`` the simulator knows (others are refused).
    postback_url
        The webhook URL, path token included.
    per_second, per_minute
        Order limits (Upstox's published 50/s and 500/min by default).
    client_id, client_secret, redirect_uri
        The app's credentials and registered redirect URI (the OAuth2 code flow).
    """

    def __init__(
        self,
        *,
        access_token: str = "upstox-token",
        instruments: Mapping[str, tuple[str, str]] | None = None,
        postback_url: str | None = None,
        per_second: int | None = 50,
        per_minute: int | None = 500,
        user_id: str = "UX1234",
        client_id: str = "upstox-client",
        client_secret: str = "upstox-secret",
        redirect_uri: str = "http://127.0.0.1/upstox/callback",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(
            "2512",
            per_second=per_second,
            per_minute=per_minute,
            postback_url=postback_url,
            clock=clock,
        )
        self.access_token = access_token
        self.instruments = dict(instruments or {"NSE_EQ|INE002A01018": ("NSE", "RELIANCE")})
        self.user_id = user_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.tokens.add(access_token)

    def render(self, order: SimOrder) -> dict[str, Any]:
        """Upstox's order entry (order details / history)."""
        label = LABELS[order.status]
        return {
            "exchange": order.exchange,
            "product": order.product,
            "price": order.price,
            "quantity": order.quantity,
            "status": label,
            "guid": None,
            "tag": order.tag,
            "instrument_token": order.instrument,
            "placed_by": self.user_id,
            "tradingsymbol": f"{order.symbol}-EQ",
            "trading_symbol": f"{order.symbol}-EQ",
            "order_type": order.order_type,
            "validity": order.validity,
            "trigger_price": order.trigger_price,
            "disclosed_quantity": 0,
            "transaction_type": order.side,
            "average_price": order.average_price,
            "filled_quantity": order.filled,
            "pending_quantity": order.quantity - order.filled if label == "open" else 0,
            "status_message": order.message,
            "status_message_raw": order.message,
            "exchange_order_id": None if label == "rejected" else f"1{order.order_id}",
            "parent_order_id": None,
            "order_id": order.order_id,
            "variety": "SIMPLE",
            "order_timestamp": ist_text(order.placed_at),
            "exchange_timestamp": ist_text(order.updated_at or order.placed_at),
            "is_amo": False,
            "order_request_id": str(len(order.history) + 1),
            "order_ref_id": f"ref-{order.order_id}",
        }

    def postback(self, order: SimOrder) -> tuple[bytes, dict[str, str]]:
        """The order update webhook (unsigned: the URL's token authenticates it)."""
        body = order.history[-1] | {"update_type": "order", "user_id": self.user_id}
        return json_bytes(body), {"Content-Type": "application/json"}


def _error(status: int, code: str, message: str) -> Response:
    entry = {
        "errorCode": code,
        "message": message,
        "propertyPath": None,
        "invalidValue": None,
        "error_code": code,
        "property_path": None,
        "invalid_value": None,
    }
    return JSONResponse({"status": "error", "errors": [entry]}, status_code=status)


def _success(data: Any, *, latency: bool = True) -> Response:
    body: dict[str, Any] = {"status": "success", "data": data}
    if latency:
        body["metadata"] = {"latency": 12}
    return Response(json_bytes(body), media_type="application/json")


def build_app(sim: UpstoxSimulator) -> Starlette:
    """The Starlette app of ``sim``."""

    async def gate(request: Request, *, order_call: bool) -> Response | None:
        body = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sim.requests.append((request.method, path, dict(request.headers), body))
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not sim.accepts(token):
            return _error(*FAILURES["token"])
        failure = sim.take_failure()
        if failure == "not_json":
            return Response("<html>502 Bad Gateway</html>", 502, media_type="text/html")
        if failure is not None:
            return _error(*FAILURES[failure])
        if order_call and not sim.limiter.allow(sim.access_token):
            return _error(*FAILURES["rate"])
        return None

    async def json_of(request: Request) -> dict[str, Any] | Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(400, "UDAPI100038", "Invalid input passed to the API")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "UDAPI100038", "Invalid input passed to the API")
        if not isinstance(body, dict):
            return _error(400, "UDAPI100038", "Invalid input passed to the API")
        return body

    def known(order_id: str | None) -> SimOrder | Response:
        order = sim.book.orders.get(order_id or "")
        if order is None:
            return _error(400, "UDAPI100010", "Order not found")
        return order

    async def place(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        body = await json_of(request)
        if isinstance(body, Response):
            return body
        instrument = body.get("instrument_token")
        if instrument not in sim.instruments:
            return _error(400, "UDAPI1026", "Instrument key is invalid")
        quantity = body.get("quantity")
        order_type = body.get("order_type")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            return _error(400, "UDAPI1052", "Order quantity cannot be zero")
        if order_type not in ORDER_TYPES or body.get("product") not in PRODUCTS:
            return _error(400, "UDAPI100036", "Invalid Input")
        if body.get("transaction_type") not in ("BUY", "SELL"):
            return _error(400, "UDAPI100036", "Invalid Input")
        tag = body.get("tag")
        if tag is not None and (not isinstance(tag, str) or len(tag) > 40):
            return _error(400, "UDAPI100036", "Invalid Input")
        try:
            price = request_price(body.get("price"))
            trigger = request_price(body.get("trigger_price"))
        except ValueError:
            return _error(400, "UDAPI100036", "Invalid Input")
        if order_type in ("LIMIT", "SL") and price == 0:
            return _error(400, "UDAPI100036", "Price is required for this order type")
        if order_type in ("SL", "SL-M") and trigger == 0:
            return _error(400, "UDAPI100036", "Trigger price is required for this order type")
        exchange, symbol = sim.instruments[instrument]
        behaviour = sim.book.next_behaviour()
        order = sim.book.create(
            behaviour,
            tag=tag,
            symbol=symbol,
            exchange=exchange,
            side=body["transaction_type"],
            quantity=quantity,
            order_type=order_type,
            product=body["product"],
            price=price,
            trigger_price=trigger,
            validity=str(body.get("validity") or "DAY"),
            instrument=instrument,
        )
        sim.book.run(order)
        if behaviour.ack_delay_s:
            await asyncio.sleep(behaviour.ack_delay_s)
        return _success({"order_ids": [order.order_id]})

    async def modify(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        body = await json_of(request)
        if isinstance(body, Response):
            return body
        order = known(body.get("order_id"))
        if isinstance(order, Response):
            return order
        for required in ("validity", "order_type", "price", "trigger_price"):
            if body.get(required) is None:
                return _error(400, "UDAPI100036", f"{required} is required")
        if order.status != "OPEN":
            return _error(400, "UDAPI100036", f"Order is {LABELS[order.status]}: cannot modify")
        quantity = body.get("quantity")
        if quantity is not None and (not isinstance(quantity, int) or quantity < order.filled):
            return _error(400, "UDAPI100036", "Invalid Input")
        try:
            price = request_price(body["price"])
            trigger = request_price(body["trigger_price"])
        except ValueError:
            return _error(400, "UDAPI100036", "Invalid Input")
        sim.book.modify(
            order,
            quantity=quantity,
            price=price,
            trigger_price=trigger,
            order_type=body["order_type"],
        )
        return _success({"order_id": order.order_id})

    async def cancel(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        order = known(request.query_params.get("order_id"))
        if isinstance(order, Response):
            return order
        if order.status != "OPEN":
            return _error(400, "UDAPI100036", f"Order is {LABELS[order.status]}: cannot cancel")
        sim.book.cancel(order)
        return _success({"order_id": order.order_id})

    async def details(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        order = known(request.query_params.get("order_id"))
        if isinstance(order, Response):
            return order
        return _success(order.history[-1], latency=False)

    async def history(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        tag = request.query_params.get("tag")
        if tag is not None and "order_id" not in request.query_params:
            tagged = [o for o in sim.book.orders.values() if o.tag == tag]
            return _success([s for o in tagged for s in o.history], latency=False)
        order = known(request.query_params.get("order_id"))
        if isinstance(order, Response):
            return order
        return _success(order.history, latency=False)

    async def dialog(request: Request) -> Response:
        # The trader authorises at once: back to the registered redirect URI with a code.
        query = request.query_params
        if query.get("client_id") != sim.client_id or query.get("response_type") != "code":
            return _error(400, "UDAPI100068", "Check your 'client_id' and 'response_type'")
        if query.get("redirect_uri") != sim.redirect_uri:
            return _error(400, "UDAPI100069", "Check your 'redirect_uri'")
        back = {"code": sim.issue_grant()}
        if query.get("state"):
            back["state"] = query["state"]
        return RedirectResponse(f"{sim.redirect_uri}?{urlencode(back)}", status_code=302)

    async def token(request: Request) -> Response:
        body = await request.body()
        sim.requests.append((request.method, request.url.path, dict(request.headers), body))
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if (
            form.get("client_id") != sim.client_id
            or form.get("client_secret") != sim.client_secret
            or form.get("redirect_uri") != sim.redirect_uri
            or form.get("grant_type") != "authorization_code"
        ):
            return _error(401, "UDAPI100016", "Invalid Credentials")
        if not sim.redeem_grant(form.get("code", "")):
            return _error(400, "UDAPI100057", "Invalid Auth code")
        return Response(
            json_bytes(
                {
                    "email": "trader@example.com",
                    "exchanges": ["NSE", "BSE"],
                    "products": ["D", "I"],
                    "broker": "UPSTOX",
                    "user_id": sim.user_id,
                    "user_name": "Simulated Trader",
                    "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
                    "user_type": "individual",
                    "poa": False,
                    "is_active": True,
                    "access_token": sim.issue_token(),
                    "extended_token": None,
                }
            ),
            media_type="application/json",
        )

    return Starlette(
        routes=[
            script_route(sim),
            Route("/v2/login/authorization/dialog", dialog, methods=["GET"]),
            Route("/v2/login/authorization/token", token, methods=["POST"]),
            Route("/v3/order/place", place, methods=["POST"]),
            Route("/v3/order/modify", modify, methods=["PUT"]),
            Route("/v3/order/cancel", cancel, methods=["DELETE"]),
            Route("/v2/order/details", details, methods=["GET"]),
            Route("/v2/order/history", history, methods=["GET"]),
        ]
    )
