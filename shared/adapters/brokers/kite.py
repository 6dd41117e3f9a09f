"""Zerodha Kite Connect v3: a thin client of the order API (:class:`shared.ports.BrokerClient`).

Contract (https://kite.trade/docs/connect/v3/orders/ and .../exceptions/):

* every request carries ``X-Kite-Version: 3`` and ``Authorization: token api_key:access_token``;
* ``POST /orders/regular`` (form-encoded) places, ``PUT /orders/regular/{order_id}`` modifies,
  ``DELETE /orders/regular/{order_id}`` cancels; each answers
  ``{"status": "success", "data": {"order_id": "..."}}``;
* ``GET /orders/{order_id}`` lists the order's states, oldest first: the last is its status
  (Kite has no single-order status call);
* an error answers ``{"status": "error", "message": ..., "error_type": ...}`` with a 4xx/5xx;
  ``error_type`` names the exception family; HTTP 429 (too many requests) may come without it.

``tag`` takes at most 20 alphanumeric characters, so the child's tag is derived from its id
(:func:`~shared.domain.broker_orders.broker_tag`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.brokers._http import BrokerHttp, HttpAnswer, call_error, unreadable
from shared.adapters.brokers._orderbook import OrderBookFields, order_state
from shared.adapters.brokers.webhooks.kite import KITE_STATUSES
from shared.domain.broker_orders import (
    BrokerAccount,
    BrokerCallError,
    BrokerErrorKind,
    BrokerLimits,
    BrokerOrderChange,
    BrokerOrderRequest,
    BrokerOrderState,
)

BASE_URL = "https://api.kite.trade"
API_VERSION = "3"
TAG_LENGTH = 20
VARIETY = "regular"

LIMITS = BrokerLimits(
    per_second=10,
    per_minute=200,
    per_day=3000,
    source="https://kite.trade/docs/connect/v3/exceptions/#api-rate-limit",
)
"""Order placement per account: 10/s, 200/min, 3,000/day across segments."""

ERROR_TYPES: Mapping[str, BrokerErrorKind] = {
    "TokenException": BrokerErrorKind.TOKEN,
    "PermissionException": BrokerErrorKind.PERMISSION,
    "UserException": BrokerErrorKind.PERMISSION,
    "InputException": BrokerErrorKind.INPUT,
    "OrderException": BrokerErrorKind.ORDER,
    "MarginException": BrokerErrorKind.ORDER,
    "HoldingException": BrokerErrorKind.ORDER,
    "NetworkException": BrokerErrorKind.NETWORK,
    "DataException": BrokerErrorKind.SERVER,
    "GeneralException": BrokerErrorKind.SERVER,
}
"""Kite's ``error_type`` -> our family (an unknown type falls back to the HTTP status)."""

FIELDS = OrderBookFields(
    table=KITE_STATUSES,
    upper_case=True,
    order_id="order_id",
    status="status",
    quantity="quantity",
    filled="filled_quantity",
    average="average_price",
    tag="tag",
    reason="status_message",
    exchange_order_id="exchange_order_id",
    placed_at=("order_timestamp",),
    updated_at=("exchange_update_timestamp", "exchange_timestamp", "order_timestamp"),
)


def _price(value: object) -> str:
    return str(value) if value is not None else "0"


def _error(answer: HttpAnswer) -> BrokerCallError:
    body = answer.body if isinstance(answer.body, Mapping) else {}
    return call_error(
        answer,
        code=body.get("error_type"),
        message=body.get("message"),
        classify=lambda _status, code: ERROR_TYPES.get(code) if code else None,
    )


class KiteClient:
    """Kite Connect v3 order API over urllib3.

    Parameters
    ----------
    base_url
        ``https://api.kite.trade``, or the local simulator's URL.
    """

    broker = "kite"
    tag_length = TAG_LENGTH

    def __init__(self, base_url: str = BASE_URL) -> None:
        self._http = BrokerHttp(base_url)

    @staticmethod
    def _headers(account: BrokerAccount) -> dict[str, str]:
        token = account.access_token.get_secret_value()
        return {
            "X-Kite-Version": API_VERSION,
            "Authorization": f"token {account.api_key}:{token}",
        }

    def _call(
        self,
        method: str,
        path: str,
        account: BrokerAccount,
        *,
        timeout_s: float,
        form: Mapping[str, str] | None = None,
    ) -> Any:
        answer = self._http.request(
            method, path, headers=self._headers(account), timeout_s=timeout_s, form=form
        )
        body = answer.body
        if answer.status >= 400:
            raise _error(answer)
        if not isinstance(body, Mapping) or body.get("status") != "success":
            # The official client raises by error_type whatever the HTTP status.
            if isinstance(body, Mapping) and (
                body.get("status") == "error" or "error_type" in body
            ):
                raise _error(answer)
            raise unreadable(answer, "Kite")
        return body.get("data")

    def _order_id(self, data: Any, answer_of: str) -> str:
        order_id = data.get("order_id") if isinstance(data, Mapping) else None
        if not isinstance(order_id, str | int) or not str(order_id):
            raise BrokerCallError(
                BrokerErrorKind.SERVER, f"Kite {answer_of} answer carries no order_id"
            )
        return str(order_id)

    def place(self, account: BrokerAccount, order: BrokerOrderRequest, *, timeout_s: float) -> str:
        """``POST /orders/regular``; the broker's order id."""
        form = {
            "tradingsymbol": order.symbol,
            "exchange": order.exchange.value,
            "transaction_type": order.side.value,
            "order_type": order.order_type.value,
            "quantity": str(order.quantity),
            "product": order.product.value,
            "validity": order.validity,
            "tag": order.tag,
        }
        if order.price is not None:
            form["price"] = _price(order.price)
        if order.trigger_price is not None:
            form["trigger_price"] = _price(order.trigger_price)
        data = self._call("POST", f"/orders/{VARIETY}", account, timeout_s=timeout_s, form=form)
        return self._order_id(data, "place")

    def modify(
        self,
        account: BrokerAccount,
        broker_order_id: str,
        change: BrokerOrderChange,
        *,
        timeout_s: float,
    ) -> str:
        """``PUT /orders/regular/{order_id}`` with the fields that change."""
        form: dict[str, str] = {}
        if change.quantity is not None:
            form["quantity"] = str(change.quantity)
        if change.price is not None:
            form["price"] = _price(change.price)
        if change.trigger_price is not None:
            form["trigger_price"] = _price(change.trigger_price)
        if change.order_type is not None:
            form["order_type"] = change.order_type.value
        data = self._call(
            "PUT", f"/orders/{VARIETY}/{broker_order_id}", account, timeout_s=timeout_s, form=form
        )
        return self._order_id(data, "modify")

    def cancel(self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float) -> str:
        """``DELETE /orders/regular/{order_id}``."""
        data = self._call(
            "DELETE", f"/orders/{VARIETY}/{broker_order_id}", account, timeout_s=timeout_s
        )
        return self._order_id(data, "cancel")

    def history(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> list[BrokerOrderState]:
        """``GET /orders/{order_id}``: every state, oldest first."""
        data = self._call("GET", f"/orders/{broker_order_id}", account, timeout_s=timeout_s)
        if not isinstance(data, list):
            raise BrokerCallError(BrokerErrorKind.SERVER, "Kite order history is not a list")
        return [order_state(entry, FIELDS, broker="Kite") for entry in data]

    def status(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> BrokerOrderState:
        """The last entry of the order's history."""
        states = self.history(account, broker_order_id, timeout_s=timeout_s)
        if not states:
            raise BrokerCallError(
                BrokerErrorKind.NOT_FOUND, f"Kite has no history for order {broker_order_id}"
            )
        return states[-1]

    def find_by_tag(
        self, account: BrokerAccount, tag: str, *, timeout_s: float
    ) -> BrokerOrderState | None:
        """``GET /orders`` (the day's order book), the latest order carrying ``tag``."""
        data = self._call("GET", "/orders", account, timeout_s=timeout_s)
        if not isinstance(data, list):
            raise BrokerCallError(BrokerErrorKind.SERVER, "Kite order book is not a list")
        tagged = [e for e in data if isinstance(e, Mapping) and e.get("tag") == tag]
        return order_state(tagged[-1], FIELDS, broker="Kite") if tagged else None
