"""Upstox: a thin client of the v3 order API and the v2 order-book API (:class:`BrokerClient`).

Contract (https://upstox.com/developer/api-documentation/ — place/modify/cancel order V3, get
order details, get order history, error codes):

* every request carries ``Authorization: Bearer <access_token>`` and ``Accept:
  application/json``; the v2 reads also ``Api-Version: 2.0``; bodies are JSON;
* orders go to the HFT host (``https://api-hft.upstox.com``): ``POST /v3/order/place`` answers
  ``{"status": "success", "data": {"order_ids": [...]}, "metadata": {"latency": ...}}`` (one id
  unless the order was sliced, which this client never asks for), ``PUT /v3/order/modify`` and
  ``DELETE /v3/order/cancel?order_id=`` answer ``{"data": {"order_id": ...}}``;
* reads go to ``https://api.upstox.com``: ``GET /v2/order/details?order_id=`` (current state)
  and ``GET /v2/order/history?order_id=`` (every state, oldest first);
* an error answers ``{"status": "error", "errors": [{"errorCode": "UDAPI...", "message": ...,
  ...}]}`` (``error_code`` in newer answers) with a 4xx/5xx.

Upstox names instruments by key (``NSE_EQ|INE002A01018``), so the adapter needs a map from
``EXCHANGE:SYMBOL`` to instrument key (the broker's ``adapter_config.instruments``).
Upstox's products are ``D`` (delivery, also carry-forward derivatives) and ``I`` (intraday): CNC
and NRML go as ``D``, MIS as ``I``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.brokers._http import BrokerHttp, HttpAnswer, call_error, unreadable
from shared.adapters.brokers._orderbook import OrderBookFields, order_state
from shared.adapters.brokers.webhooks.upstox import UPSTOX_STATUSES
from shared.domain.broker_orders import (
    BrokerAccount,
    BrokerCallError,
    BrokerErrorKind,
    BrokerLimits,
    BrokerOrderChange,
    BrokerOrderRequest,
    BrokerOrderState,
    BrokerProduct,
)

BASE_URL = "https://api.upstox.com"
ORDER_BASE_URL = "https://api-hft.upstox.com"
TAG_LENGTH = 40

LIMITS = BrokerLimits(
    per_second=50,
    per_minute=500,
    source="https://upstox.com/developer/api-documentation/rate-limiting (standard APIs; "
    "also 2,000 per 30 minutes)",
)

PRODUCTS: Mapping[BrokerProduct, str] = {
    BrokerProduct.CNC: "D",
    BrokerProduct.NRML: "D",
    BrokerProduct.MIS: "I",
}

ERROR_CODES: Mapping[str, BrokerErrorKind] = {
    "UDAPI100050": BrokerErrorKind.TOKEN,  # invalid token used to access API
    "UDAPI100016": BrokerErrorKind.TOKEN,  # invalid credentials
    "UDAPI100067": BrokerErrorKind.PERMISSION,  # not permitted with an extended token
    "UDAPI100073": BrokerErrorKind.PERMISSION,  # client_id inactive
    "UDAPI10005": BrokerErrorKind.RATE_LIMITED,  # too many requests sent
    "UDAPI100010": BrokerErrorKind.NOT_FOUND,  # order not found
    "UDAPI10000": BrokerErrorKind.INPUT,  # request not supported
    "UDAPI100015": BrokerErrorKind.INPUT,  # API version does not exist
    "UDAPI100036": BrokerErrorKind.INPUT,  # invalid input
    "UDAPI100038": BrokerErrorKind.INPUT,  # invalid input passed to the API
    "UDAPI100500": BrokerErrorKind.SERVER,  # something went wrong
}
"""Upstox's common error codes (error-codes page) -> our family; others follow the HTTP status
(Upstox answers order refusals such as insufficient funds with a 4xx and its own code)."""

FIELDS = OrderBookFields(
    table=UPSTOX_STATUSES,
    upper_case=False,
    order_id="order_id",
    status="status",
    quantity="quantity",
    filled="filled_quantity",
    average="average_price",
    tag="tag",
    reason="status_message",
    exchange_order_id="exchange_order_id",
    placed_at=("order_timestamp",),
    updated_at=("exchange_timestamp", "order_timestamp"),
)


def _error(answer: HttpAnswer) -> BrokerCallError:
    body = answer.body if isinstance(answer.body, Mapping) else {}
    errors = body.get("errors")
    first: Mapping[str, Any] = (
        errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    )
    return call_error(
        answer,
        code=first.get("error_code") or first.get("errorCode"),
        message=first.get("message"),
        classify=_classify,
    )


def _classify(status: int, code: str | None) -> BrokerErrorKind | None:
    if code is not None and code in ERROR_CODES:
        return ERROR_CODES[code]
    # A 400 with the broker's own code refuses this order (funds, price band, instrument).
    return BrokerErrorKind.ORDER if status == 400 and code else None


class UpstoxClient:
    """Upstox order API over urllib3.

    Parameters
    ----------
    base_url
        The read API root (``https://api.upstox.com``) or the simulator's URL.
    order_base_url
        The order API root (``https://api-hft.upstox.com``); defaults to ``base_url`` when a
        simulator serves both.
    instruments
        ``"NSE:RELIANCE"`` -> ``"NSE_EQ|INE002A01018"``.
    """

    broker = "upstox"
    tag_length = TAG_LENGTH

    def __init__(
        self,
        base_url: str = BASE_URL,
        *,
        order_base_url: str | None = None,
        instruments: Mapping[str, str] | None = None,
    ) -> None:
        self._http = BrokerHttp(base_url)
        self._order_base = order_base_url or (ORDER_BASE_URL if base_url == BASE_URL else base_url)
        self._instruments = dict(instruments or {})

    @staticmethod
    def _headers(account: BrokerAccount, *, v2: bool = False) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {account.access_token.get_secret_value()}",
            "Accept": "application/json",
        }
        if v2:
            headers["Api-Version"] = "2.0"
        return headers

    def _call(
        self,
        method: str,
        path: str,
        account: BrokerAccount,
        *,
        timeout_s: float,
        order_api: bool,
        query: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> Any:
        answer = self._http.request(
            method,
            path,
            headers=self._headers(account, v2=not order_api),
            timeout_s=timeout_s,
            query=query,
            json_body=json_body,
            base_url=self._order_base if order_api else None,
        )
        body = answer.body
        if answer.status >= 400:
            raise _error(answer)
        if not isinstance(body, Mapping) or body.get("status") != "success":
            if isinstance(body, Mapping) and body.get("status") == "error":
                raise _error(answer)
            raise unreadable(answer, "Upstox")
        return body.get("data")

    def instrument_key(self, order: BrokerOrderRequest) -> str:
        """The Upstox instrument key of the order's symbol.

        Raises
        ------
        BrokerCallError
            ``INPUT`` when the symbol is not in the instrument map (nothing is sent).
        """
        key = self._instruments.get(f"{order.exchange.value}:{order.symbol}")
        if key is None:
            raise BrokerCallError(
                BrokerErrorKind.INPUT,
                f"no Upstox instrument key for {order.exchange.value}:{order.symbol}",
            )
        return key

    def place(self, account: BrokerAccount, order: BrokerOrderRequest, *, timeout_s: float) -> str:
        """``POST /v3/order/place`` (never sliced); the broker's order id."""
        body = {
            "quantity": order.quantity,
            "product": PRODUCTS[order.product],
            "validity": order.validity,
            "price": float(order.price or 0),
            "tag": order.tag,
            "instrument_token": self.instrument_key(order),
            "order_type": order.order_type.value,
            "transaction_type": order.side.value,
            "disclosed_quantity": 0,
            "trigger_price": float(order.trigger_price or 0),
            "is_amo": False,
            "slice": False,
        }
        data = self._call(
            "POST", "/v3/order/place", account, timeout_s=timeout_s, order_api=True, json_body=body
        )
        ids = data.get("order_ids") if isinstance(data, Mapping) else None
        if not isinstance(ids, list) or len(ids) != 1 or not isinstance(ids[0], str | int):
            raise BrokerCallError(
                BrokerErrorKind.SERVER, f"Upstox place answer has no single order id: {data!r}"
            )
        return str(ids[0])

    def _order_id(self, data: Any, what: str) -> str:
        order_id = data.get("order_id") if isinstance(data, Mapping) else None
        if not isinstance(order_id, str | int) or not str(order_id):
            raise BrokerCallError(BrokerErrorKind.SERVER, f"Upstox {what} answer has no order_id")
        return str(order_id)

    def modify(
        self,
        account: BrokerAccount,
        broker_order_id: str,
        change: BrokerOrderChange,
        *,
        timeout_s: float,
    ) -> str:
        """``PUT /v3/order/modify``.

        Upstox requires the order type, validity, price and trigger price on every
        modification, so the order's details are read first and what ``change`` leaves out is
        sent unchanged.
        """
        current = self._details(account, broker_order_id, timeout_s=timeout_s)

        def keep(new: object, field: str) -> Any:
            return new if new is not None else current.get(field)

        body: dict[str, Any] = {
            "order_id": broker_order_id,
            "validity": current.get("validity") or "DAY",
            "order_type": change.order_type.value
            if change.order_type
            else current.get("order_type"),
            "quantity": keep(change.quantity, "quantity"),
            "price": float(keep(change.price, "price") or 0),
            "trigger_price": float(keep(change.trigger_price, "trigger_price") or 0),
            "disclosed_quantity": 0,
        }
        data = self._call(
            "PUT", "/v3/order/modify", account, timeout_s=timeout_s, order_api=True, json_body=body
        )
        return self._order_id(data, "modify")

    def _details(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> Mapping[str, Any]:
        data = self._call(
            "GET",
            "/v2/order/details",
            account,
            timeout_s=timeout_s,
            order_api=False,
            query={"order_id": broker_order_id},
        )
        if not isinstance(data, Mapping):
            raise BrokerCallError(BrokerErrorKind.SERVER, "Upstox order details are not an object")
        return data

    def cancel(self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float) -> str:
        """``DELETE /v3/order/cancel?order_id=``."""
        data = self._call(
            "DELETE",
            "/v3/order/cancel",
            account,
            timeout_s=timeout_s,
            order_api=True,
            query={"order_id": broker_order_id},
        )
        return self._order_id(data, "cancel")

    def status(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> BrokerOrderState:
        """``GET /v2/order/details?order_id=``."""
        details = self._details(account, broker_order_id, timeout_s=timeout_s)
        return order_state(details, FIELDS, broker="Upstox")

    def history(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> list[BrokerOrderState]:
        """``GET /v2/order/history?order_id=``: every state, oldest first."""
        data = self._call(
            "GET",
            "/v2/order/history",
            account,
            timeout_s=timeout_s,
            order_api=False,
            query={"order_id": broker_order_id},
        )
        if not isinstance(data, list):
            raise BrokerCallError(BrokerErrorKind.SERVER, "Upstox order history is not a list")
        return [order_state(entry, FIELDS, broker="Upstox") for entry in data]

    def find_by_tag(
        self, account: BrokerAccount, tag: str, *, timeout_s: float
    ) -> BrokerOrderState | None:
        """``GET /v2/order/history?tag=``: the last state of the orders placed under ``tag``."""
        try:
            data = self._call(
                "GET",
                "/v2/order/history",
                account,
                timeout_s=timeout_s,
                order_api=False,
                query={"tag": tag},
            )
        except BrokerCallError as exc:
            if exc.kind is BrokerErrorKind.NOT_FOUND:
                return None
            raise
        if not isinstance(data, list):
            raise BrokerCallError(BrokerErrorKind.SERVER, "Upstox order history is not a list")
        return order_state(data[-1], FIELDS, broker="Upstox") if data else None
