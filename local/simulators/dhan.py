"""A local Dhan (DhanHQ v2) simulator: the order API, trades and postbacks.

Speaks what ``shared/adapters/brokers/dhan.py`` speaks (https://dhanhq.co/docs/v2/orders/):
``access-token`` header (401 ``DH-901`` otherwise), JSON bodies carrying ``dhanClientId``,
``{"orderId", "orderStatus"}`` answers, ``{"errorType", "errorCode", "errorMessage"}`` errors
(annexure codes DH-901...DH-910), 429 ``DH-904`` beyond the rate limits. Postbacks are the
order's JSON (https://dhanhq.co/docs/v2/postback/), unsigned, posted to a URL carrying the
secret path token (Dhan does not sign its postbacks).
"""

# Endpoints are closures over one simulator, each refusing bad calls as the broker does (many
# returns); the default credentials are the simulator's own, not secrets.
# ruff: noqa: C901, PLR0911, PLR0915, S107

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.simulators._core import (
    IST,
    ErrorKind,
    SimOrder,
    Simulator,
    ist_text,
    json_bytes,
    request_price,
    script_route,
)

ORDER_TYPES = {"MARKET", "LIMIT", "STOP_LOSS", "STOP_LOSS_MARKET"}
PRODUCTS = {"CNC", "INTRADAY", "MARGIN", "MTF"}

FAILURES: dict[ErrorKind, tuple[int, str, str, str]] = {
    "token": (
        401,
        "Invalid_Authentication",
        "DH-901",
        "Client ID or user generated access token is invalid or expired.",
    ),
    "permission": (403, "Invalid_Access", "DH-902", "User has not subscribed to Data APIs."),
    "input": (400, "Input_Exception", "DH-905", "Missing required fields, bad values."),
    "order": (400, "Order_Error", "DH-906", "Incorrect request for order; cannot be processed."),
    "network": (500, "Network_Error", "DH-909", "API unable to reach the backend system."),
    "server": (500, "Internal_Server_Error", "DH-908", "Server was not able to process request."),
    "rate": (429, "Rate_Limit", "DH-904", "Too many requests from a single user."),
}


def _label(order: SimOrder) -> str:
    if order.status == "COMPLETE":
        return "TRADED"
    if order.status == "OPEN":
        return "PART_TRADED" if order.filled else "PENDING"
    return order.status


class DhanSimulator(Simulator):
    """The Dhan order book.

    Parameters
    ----------
    client_id, access_token
        The ``dhanClientId`` bodies must carry and the ``access-token`` header.
    security_ids
        Security id -> ``(exchange, symbol)`` the simulator knows.
    postback_url
        The postback URL, path token included.
    per_second, per_minute
        Order limits (Dhan's published 10/s and 250/min by default).
    """

    def __init__(
        self,
        *,
        client_id: str = "1000000001",
        access_token: str = "dhan-token",
        security_ids: Mapping[str, tuple[str, str]] | None = None,
        postback_url: str | None = None,
        per_second: int | None = 10,
        per_minute: int | None = 250,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(
            "5212",
            per_second=per_second,
            per_minute=per_minute,
            postback_url=postback_url,
            clock=clock,
        )
        self.client_id = client_id
        self.access_token = access_token
        self.tokens.add(access_token)
        self.security_ids = dict(security_ids or {"2885": ("NSE", "RELIANCE")})

    def render(self, order: SimOrder) -> dict[str, Any]:
        """Dhan's order entry (order book and postbacks share it)."""
        label = _label(order)
        return {
            "dhanClientId": self.client_id,
            "orderId": order.order_id,
            "exchangeOrderId": None if label == "REJECTED" else f"1{order.order_id}",
            "correlationId": order.tag,
            "orderStatus": label,
            "transactionType": order.side,
            "exchangeSegment": f"{order.exchange}_EQ",
            "productType": order.product,
            "orderType": order.order_type,
            "validity": order.validity,
            "tradingSymbol": order.symbol,
            "securityId": order.instrument,
            "quantity": order.quantity,
            "disclosedQuantity": 0,
            "price": order.price,
            "triggerPrice": order.trigger_price,
            "afterMarketOrder": False,
            "legName": None,
            "createTime": ist_text(order.placed_at),
            "updateTime": ist_text(order.updated_at or order.placed_at),
            "exchangeTime": ist_text(order.updated_at or order.placed_at),
            "omsErrorCode": None,
            "omsErrorDescription": order.message,
            "remainingQuantity": order.quantity - order.filled,
            "averageTradedPrice": order.average_price,
            "filledQty": order.filled,
        }

    def trades(self, order: SimOrder) -> list[dict[str, Any]]:
        """The order's trades: one per increase of its filled quantity."""
        trades: list[dict[str, Any]] = []
        filled = 0
        for n, state in enumerate(order.history):
            if state["filledQty"] > filled:
                trades.append(
                    {
                        "dhanClientId": self.client_id,
                        "orderId": order.order_id,
                        "exchangeOrderId": state["exchangeOrderId"],
                        "exchangeTradeId": f"{order.order_id}{n:02d}",
                        "transactionType": order.side,
                        "exchangeSegment": state["exchangeSegment"],
                        "productType": order.product,
                        "orderType": order.order_type,
                        "tradingSymbol": order.symbol,
                        "securityId": order.instrument,
                        "tradedQuantity": state["filledQty"] - filled,
                        "tradedPrice": order.behaviour.fill_price,
                        "createTime": state["updateTime"],
                        "updateTime": state["updateTime"],
                        "exchangeTime": state["exchangeTime"],
                    }
                )
                filled = state["filledQty"]
        return trades

    def postback(self, order: SimOrder) -> tuple[bytes, dict[str, str]]:
        """The postback (unsigned: the URL's token authenticates it)."""
        return json_bytes(order.history[-1]), {"Content-Type": "application/json"}


def _error(status: int, error_type: str, code: str, message: str) -> Response:
    return JSONResponse(
        {"errorType": error_type, "errorCode": code, "errorMessage": message}, status_code=status
    )


def _answer(data: Any) -> Response:
    return Response(json_bytes(data), media_type="application/json")


def build_app(sim: DhanSimulator) -> Starlette:
    """The Starlette app of ``sim`` (paths under ``/v2``)."""
    bad_input = FAILURES["input"]

    async def gate(request: Request, *, order_call: bool) -> Response | None:
        body = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sim.requests.append((request.method, path, dict(request.headers), body))
        if not sim.accepts(request.headers.get("access-token")):
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
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(*bad_input)
        if not isinstance(body, dict) or body.get("dhanClientId") != sim.client_id:
            return _error(*bad_input)
        return body

    def known(order_id: str) -> SimOrder | Response:
        order = sim.book.orders.get(order_id)
        if order is None:
            return _error(400, "Input_Exception", "DH-905", "Order not found")
        return order

    async def place(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        body = await json_of(request)
        if isinstance(body, Response):
            return body
        security = sim.security_ids.get(str(body.get("securityId")))
        quantity = body.get("quantity")
        order_type = body.get("orderType")
        tag = body.get("correlationId")
        try:
            price = request_price(body.get("price"))
            trigger = request_price(body.get("triggerPrice"))
        except ValueError:
            return _error(*bad_input)
        invalid = (
            security is None
            or f"{security[0]}_EQ" != body.get("exchangeSegment")
            or not isinstance(quantity, int)
            or isinstance(quantity, bool)
            or quantity <= 0
            or order_type not in ORDER_TYPES
            or body.get("productType") not in PRODUCTS
            or body.get("transactionType") not in ("BUY", "SELL")
            or (tag is not None and (not isinstance(tag, str) or len(tag) > 25))
            or (order_type in ("LIMIT", "STOP_LOSS") and price == 0)
            or (order_type in ("STOP_LOSS", "STOP_LOSS_MARKET") and trigger == 0)
        )
        if invalid or security is None or not isinstance(quantity, int):
            return _error(*bad_input)
        behaviour = sim.book.next_behaviour()
        order = sim.book.create(
            behaviour,
            tag=tag,
            symbol=security[1],
            exchange=security[0],
            side=body["transactionType"],
            quantity=quantity,
            order_type=str(order_type),
            product=body["productType"],
            price=price,
            trigger_price=trigger,
            validity=str(body.get("validity") or "DAY"),
            instrument=str(body["securityId"]),
        )
        sim.book.run(order)
        if behaviour.ack_delay_s:
            await asyncio.sleep(behaviour.ack_delay_s)
        return _answer({"orderId": order.order_id, "orderStatus": "TRANSIT"})

    async def modify(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        body = await json_of(request)
        if isinstance(body, Response):
            return body
        order = known(request.path_params["order_id"])
        if isinstance(order, Response):
            return order
        if order.status != "OPEN":
            return _error(*FAILURES["order"])
        quantity = body.get("quantity")
        if body.get("orderType") not in ORDER_TYPES or not isinstance(quantity, int):
            return _error(*bad_input)
        try:
            price = request_price(body["price"]) if "price" in body else None
            trigger = request_price(body["triggerPrice"]) if "triggerPrice" in body else None
        except ValueError:
            return _error(*bad_input)
        sim.book.modify(
            order,
            quantity=quantity,
            price=price,
            trigger_price=trigger,
            order_type=body["orderType"],
        )
        return _answer({"orderId": order.order_id, "orderStatus": "TRANSIT"})

    async def cancel(request: Request) -> Response:
        refused = await gate(request, order_call=True)
        if refused is not None:
            return refused
        order = known(request.path_params["order_id"])
        if isinstance(order, Response):
            return order
        if order.status != "OPEN":
            return _error(*FAILURES["order"])
        sim.book.cancel(order)
        return _answer({"orderId": order.order_id, "orderStatus": "CANCELLED"})

    async def status(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        order = known(request.path_params["order_id"])
        if isinstance(order, Response):
            return order
        return _answer(order.history[-1])

    async def trades(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        order = known(request.path_params["order_id"])
        if isinstance(order, Response):
            return order
        return _answer(sim.trades(order))

    async def by_correlation(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        wanted = request.path_params["correlation_id"]
        tagged = [o for o in sim.book.orders.values() if o.tag == wanted]
        if not tagged:
            return _error(404, "Input_Exception", "DH-905", "No order for this correlation id")
        return _answer(tagged[-1].history[-1])

    async def profile(request: Request) -> Response:
        refused = await gate(request, order_call=False)
        if refused is not None:
            return refused
        validity = (sim.clock() + timedelta(hours=24)).astimezone(IST)
        return JSONResponse(
            {
                "dhanClientId": sim.client_id,
                "tokenValidity": validity.strftime("%d/%m/%Y %H:%M"),
                "activeSegment": "Equity, Derivative",
                "ddpi": "Active",
                "mtf": "Active",
                "dataPlan": "Active",
                "dataValidity": validity.strftime("%Y-%m-%d %H:%M:%S.0"),
            }
        )

    return Starlette(
        routes=[
            script_route(sim),
            Route("/v2/profile", profile, methods=["GET"]),
            Route("/v2/orders/external/{correlation_id}", by_correlation, methods=["GET"]),
            Route("/v2/orders", place, methods=["POST"]),
            Route("/v2/orders/{order_id}", modify, methods=["PUT"]),
            Route("/v2/orders/{order_id}", cancel, methods=["DELETE"]),
            Route("/v2/orders/{order_id}", status, methods=["GET"]),
            Route("/v2/trades/{order_id}", trades, methods=["GET"]),
        ]
    )
