"""Dhan (DhanHQ v2): a thin client of the order API (:class:`shared.ports.BrokerClient`).

Contract (https://dhanhq.co/docs/v2/orders/, .../annexure/):

* every request carries ``access-token: <token>`` (and ``client-id``); bodies are JSON and
  carry ``dhanClientId``;
* ``POST /v2/orders`` places and answers ``{"orderId": ..., "orderStatus": ...}``;
  ``PUT /v2/orders/{order-id}`` modifies, ``DELETE /v2/orders/{order-id}`` cancels (same
  answer); ``GET /v2/orders/{order-id}`` is the order's current state and
  ``GET /v2/trades/{order-id}`` its trades;
* an error answers ``{"errorType": ..., "errorCode": "DH-9xx", "errorMessage": ...}``.

Dhan publishes no order-state history: :meth:`DhanClient.history` rebuilds it from the order's
trades (one cumulative state per trade) and its current state. Dhan names instruments by
``securityId``, so the adapter needs ``EXCHANGE:SYMBOL`` -> security id (the broker's
``adapter_config.security_ids``). ``correlationId`` takes at most 25 characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.adapters.brokers._http import BrokerHttp, HttpAnswer, call_error, unreadable
from shared.adapters.brokers._orderbook import OrderBookFields, order_state
from shared.adapters.brokers.webhooks import _parsing as p
from shared.adapters.brokers.webhooks.dhan import DHAN_STATUSES
from shared.domain.broker_orders import (
    BrokerAccount,
    BrokerCallError,
    BrokerErrorKind,
    BrokerLimits,
    BrokerOrderChange,
    BrokerOrderRequest,
    BrokerOrderState,
    BrokerOrderType,
    BrokerProduct,
)
from shared.domain.errors import MalformedPayloadError
from shared.domain.execution import PRICE_QUANTUM, ExecutionStatus

BASE_URL = "https://api.dhan.co/v2"
TAG_LENGTH = 25

LIMITS = BrokerLimits(
    per_second=10,
    per_minute=250,
    per_hour=1000,
    per_day=7000,
    source="https://dhanhq.co/docs/v2/#rate-limit (order APIs; 10/s since the 2026 retail-algo "
    "rules, 25/s before)",
)

PRODUCTS: Mapping[BrokerProduct, str] = {
    BrokerProduct.CNC: "CNC",
    BrokerProduct.MIS: "INTRADAY",
    BrokerProduct.NRML: "MARGIN",
}
ORDER_TYPES: Mapping[BrokerOrderType, str] = {
    BrokerOrderType.MARKET: "MARKET",
    BrokerOrderType.LIMIT: "LIMIT",
    BrokerOrderType.SL: "STOP_LOSS",
    BrokerOrderType.SL_M: "STOP_LOSS_MARKET",
}

ERROR_CODES: Mapping[str, BrokerErrorKind] = {
    "DH-901": BrokerErrorKind.TOKEN,  # Invalid_Authentication: token invalid or expired
    "DH-902": BrokerErrorKind.PERMISSION,  # Invalid_Access: not subscribed to the API
    "DH-903": BrokerErrorKind.PERMISSION,  # User_Account: account or segment issue
    "DH-904": BrokerErrorKind.RATE_LIMITED,  # Rate_Limit
    "DH-905": BrokerErrorKind.INPUT,  # Input_Exception
    "DH-906": BrokerErrorKind.ORDER,  # Order_Error
    "DH-907": BrokerErrorKind.SERVER,  # Data_Error
    "DH-908": BrokerErrorKind.SERVER,  # Internal_Server_Error
    "DH-909": BrokerErrorKind.NETWORK,  # Network_Error: could not reach the exchange/OMS
    "DH-910": BrokerErrorKind.SERVER,  # Others
}
"""Dhan's annexure trading-API error codes -> our family."""

FIELDS = OrderBookFields(
    table=DHAN_STATUSES,
    upper_case=True,
    order_id="orderId",
    status="orderStatus",
    quantity="quantity",
    filled="filledQty",
    average="averageTradedPrice",
    tag="correlationId",
    reason="omsErrorDescription",
    exchange_order_id="exchangeOrderId",
    placed_at=("createTime",),
    updated_at=("updateTime", "exchangeTime", "createTime"),
    done_means_filled=True,
)


def _error(answer: HttpAnswer) -> BrokerCallError:
    body = answer.body if isinstance(answer.body, Mapping) else {}
    return call_error(
        answer,
        code=body.get("errorCode"),
        message=body.get("errorMessage"),
        classify=_classify,
    )


def _classify(status: int, code: str | None) -> BrokerErrorKind | None:
    # Dhan answers 404 for an order it does not know, whatever code the body carries.
    if status == 404:
        return BrokerErrorKind.NOT_FOUND
    return ERROR_CODES.get(code) if code else None


def _price(value: Decimal | None) -> float:
    return float(value) if value is not None else 0.0


class DhanClient:
    """DhanHQ v2 order API over urllib3.

    Parameters
    ----------
    base_url
        ``https://api.dhan.co/v2``, or the simulator's URL (with its ``/v2``).
    security_ids
        ``"NSE:RELIANCE"`` -> ``"2885"``.
    """

    broker = "dhan"
    tag_length = TAG_LENGTH

    def __init__(
        self, base_url: str = BASE_URL, *, security_ids: Mapping[str, str] | None = None
    ) -> None:
        self._http = BrokerHttp(base_url)
        self._security_ids = dict(security_ids or {})

    @staticmethod
    def _headers(account: BrokerAccount) -> dict[str, str]:
        return {
            "access-token": account.access_token.get_secret_value(),
            "client-id": account.client_id,
            "Accept": "application/json",
        }

    def _call(
        self,
        method: str,
        path: str,
        account: BrokerAccount,
        *,
        timeout_s: float,
        json_body: Mapping[str, Any] | None = None,
    ) -> Any:
        answer = self._http.request(
            method, path, headers=self._headers(account), timeout_s=timeout_s, json_body=json_body
        )
        if answer.status >= 400:
            raise _error(answer)
        if answer.body is None:
            raise unreadable(answer, "Dhan")
        return answer.body

    def _order_id(self, data: Any, what: str) -> str:
        order_id = data.get("orderId") if isinstance(data, Mapping) else None
        if not isinstance(order_id, str | int) or not str(order_id):
            raise BrokerCallError(BrokerErrorKind.SERVER, f"Dhan {what} answer has no orderId")
        return str(order_id)

    def security_id(self, order: BrokerOrderRequest) -> str:
        """Dhan's security id of the order's symbol.

        Raises
        ------
        BrokerCallError
            ``INPUT`` when the symbol is not in the map (nothing is sent).
        """
        security_id = self._security_ids.get(f"{order.exchange.value}:{order.symbol}")
        if security_id is None:
            raise BrokerCallError(
                BrokerErrorKind.INPUT,
                f"no Dhan security id for {order.exchange.value}:{order.symbol}",
            )
        return security_id

    def place(self, account: BrokerAccount, order: BrokerOrderRequest, *, timeout_s: float) -> str:
        """``POST /orders``; the broker's order id."""
        body = {
            "dhanClientId": account.client_id,
            "correlationId": order.tag,
            "transactionType": order.side.value,
            "exchangeSegment": f"{order.exchange.value}_EQ",
            "productType": PRODUCTS[order.product],
            "orderType": ORDER_TYPES[order.order_type],
            "validity": order.validity,
            "securityId": self.security_id(order),
            "quantity": order.quantity,
            "disclosedQuantity": 0,
            "price": _price(order.price),
            "triggerPrice": _price(order.trigger_price),
            "afterMarketOrder": False,
        }
        data = self._call("POST", "/orders", account, timeout_s=timeout_s, json_body=body)
        return self._order_id(data, "place")

    def modify(
        self,
        account: BrokerAccount,
        broker_order_id: str,
        change: BrokerOrderChange,
        *,
        timeout_s: float,
    ) -> str:
        """``PUT /orders/{order-id}``.

        Dhan wants the order type and quantity every time, so the current order is read first
        when the change leaves them out.
        """
        current: Mapping[str, Any] = {}
        if change.order_type is None or change.quantity is None:
            current = self._entry(account, broker_order_id, timeout_s=timeout_s)
        body: dict[str, Any] = {
            "dhanClientId": account.client_id,
            "orderId": broker_order_id,
            "orderType": ORDER_TYPES[change.order_type]
            if change.order_type
            else current.get("orderType"),
            "legName": "",
            "quantity": change.quantity if change.quantity is not None else current.get("quantity"),
            "validity": current.get("validity") or "DAY",
            "disclosedQuantity": 0,
        }
        if change.price is not None:
            body["price"] = float(change.price)
        if change.trigger_price is not None:
            body["triggerPrice"] = float(change.trigger_price)
        data = self._call(
            "PUT", f"/orders/{broker_order_id}", account, timeout_s=timeout_s, json_body=body
        )
        return self._order_id(data, "modify")

    def cancel(self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float) -> str:
        """``DELETE /orders/{order-id}``."""
        data = self._call("DELETE", f"/orders/{broker_order_id}", account, timeout_s=timeout_s)
        return self._order_id(data, "cancel")

    def _entry(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> Mapping[str, Any]:
        data = self._call("GET", f"/orders/{broker_order_id}", account, timeout_s=timeout_s)
        # Dhan has answered this call both with the order object and with a one-element list.
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if not isinstance(data, Mapping):
            raise BrokerCallError(BrokerErrorKind.SERVER, "Dhan order answer is not an order")
        return data

    def find_by_tag(
        self, account: BrokerAccount, tag: str, *, timeout_s: float
    ) -> BrokerOrderState | None:
        """``GET /orders/external/{correlation-id}``; ``None`` when Dhan knows no such order."""
        try:
            data = self._call("GET", f"/orders/external/{tag}", account, timeout_s=timeout_s)
        except BrokerCallError as exc:
            if exc.kind is BrokerErrorKind.NOT_FOUND:
                return None
            raise
        if isinstance(data, list):
            if not data:
                return None
            data = data[-1]
        return order_state(data, FIELDS, broker="Dhan")

    def status(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> BrokerOrderState:
        """``GET /orders/{order-id}``."""
        entry = self._entry(account, broker_order_id, timeout_s=timeout_s)
        return order_state(entry, FIELDS, broker="Dhan")

    def history(
        self, account: BrokerAccount, broker_order_id: str, *, timeout_s: float
    ) -> list[BrokerOrderState]:
        """The order's states rebuilt from ``GET /trades/{order-id}`` and its current state."""
        current = self.status(account, broker_order_id, timeout_s=timeout_s)
        trades = self._call("GET", f"/trades/{broker_order_id}", account, timeout_s=timeout_s)
        if not isinstance(trades, list):
            raise BrokerCallError(BrokerErrorKind.SERVER, "Dhan trades answer is not a list")
        states = [
            current.model_copy(
                update={
                    "status": ExecutionStatus.OPEN,
                    "broker_status": "PENDING",
                    "filled_quantity": 0,
                    "average_price": None,
                    "reason": None,
                    "updated_at": current.placed_at,
                }
            )
        ]
        filled = 0
        notional = Decimal(0)
        try:
            for trade in sorted(trades, key=lambda t: str(t.get("exchangeTime") or "")):
                quantity = p.integer(trade, "tradedQuantity")
                price = p.decimal(trade, "tradedPrice")
                if quantity <= 0 or price is None or price <= 0:
                    raise MalformedPayloadError("tradedQuantity", "a trade must fill something")
                filled += quantity
                notional += price * quantity
                status = (
                    ExecutionStatus.FILLED
                    if filled >= current.quantity
                    else ExecutionStatus.PARTIALLY_FILLED
                )
                states.append(
                    current.model_copy(
                        update={
                            "status": status,
                            "broker_status": "TRADED" if status.is_terminal else "PART_TRADED",
                            "filled_quantity": filled,
                            "average_price": (notional / filled).quantize(PRICE_QUANTUM),
                            "reason": None,
                            "updated_at": p.timestamp(
                                trade, "exchangeTime", "updateTime", "createTime"
                            ),
                        }
                    )
                )
        except (MalformedPayloadError, AttributeError) as exc:
            raise BrokerCallError(BrokerErrorKind.SERVER, f"unreadable Dhan trade: {exc}") from exc
        last = states[-1]
        if (last.status, last.filled_quantity) != (current.status, current.filled_quantity):
            states.append(current)
        return states
