"""Dhan (DhanHQ v2) postbacks -> :class:`ExecutionReport`.

Format: https://dhanhq.co/docs/v2/postback/ (payload and ``orderStatus`` values TRANSIT,
PENDING, REJECTED, CANCELLED, TRADED, EXPIRED; sent on status change, modification or partial
fill). The documented sample has no filled quantity or average price; Dhan's order book
(https://dhanhq.co/docs/v2/orders/) names them ``filledQty`` and ``averageTradedPrice`` and adds
``PART_TRADED``, so those names are read when present. Dhan does not sign postbacks: verify the
URL token with :func:`~.verification.verify_path_token` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.brokers.webhooks import _parsing as p
from shared.domain.errors import MalformedPayloadError
from shared.domain.execution import ExecutionReport

DHAN_STATUSES: Mapping[str, p.Phase] = {
    "TRADED": p.Phase.DONE,
    "CANCELLED": p.Phase.CANCELLED,
    "EXPIRED": p.Phase.CANCELLED,
    "REJECTED": p.Phase.REJECTED,
    "TRANSIT": p.Phase.WORKING,
    "PENDING": p.Phase.WORKING,
    "PART_TRADED": p.Phase.WORKING,
    "TRIGGERED": p.Phase.WORKING,
}


# Report field -> field in the body, so a structural error names what Dhan sent.
_DHAN_FIELDS = {
    "broker_order_id": "orderId",
    "child_order_id": "correlationId",
    "exchange_order_id": "exchangeOrderId",
    "status_message": "omsErrorDescription",
}


def normalise_dhan(
    payload: Mapping[str, Any],
    *,
    broker_id: str,
    symbols_by_security_id: Mapping[str, str] | None = None,
) -> ExecutionReport:
    """Normalise one Dhan postback.

    Parameters
    ----------
    payload
        The decoded JSON body.
    broker_id
        Our id of the broker the webhook was addressed to.
    symbols_by_security_id
        Dhan's ``securityId`` -> trading symbol, used when ``tradingSymbol`` is empty (as in
        Dhan's own sample). The caller loads it from the instrument master; omitted, an empty
        ``tradingSymbol`` is malformed.

    Returns
    -------
    ExecutionReport
        ``child_order_id`` is ``correlationId``. Without ``filledQty`` a ``TRADED`` order counts
        as fully filled and anything else as unfilled; fills then need ``averageTradedPrice``.
        ``EXPIRED`` becomes ``CANCELLED`` with the reason kept. ``event_time`` is ``updateTime``,
        else ``exchangeTime``, else ``createTime`` (IST).

    Raises
    ------
    MalformedPayloadError
        A missing or ill-typed field, named as Dhan spells it.
    UnsupportedPayloadError
        A segment other than ``NSE_EQ``/``BSE_EQ``.
    InvalidExecutionReportError
        Figures that cannot be true.
    """
    state = p.fill_state(
        payload,
        table=DHAN_STATUSES,
        status_key="orderStatus",
        quantity_key="quantity",
        filled_key="filledQty",
        average_key="averageTradedPrice",
        upper_case=True,
        done_means_filled=True,
    )
    message = p.text(payload, "omsErrorDescription", required=False)
    if state.raw_status == "EXPIRED":
        message = f"EXPIRED: {message}" if message else "EXPIRED"
    return p.build_report(
        dict(
            broker_id=broker_id,
            broker_order_id=p.required_text(payload, "orderId"),
            child_order_id=p.text(payload, "correlationId", required=False),
            exchange_order_id=p.text(payload, "exchangeOrderId", required=False),
            status=state.status,
            quantity=state.quantity,
            filled_quantity=state.filled,
            average_price=state.average_price,
            symbol=_symbol(payload, symbols_by_security_id),
            exchange=p.exchange(payload, "exchangeSegment"),
            side=p.side(payload, "transactionType"),
            event_time=p.timestamp(payload, "updateTime", "exchangeTime", "createTime"),
            status_message=message,
        ),
        _DHAN_FIELDS,
    )


def _symbol(payload: Mapping[str, Any], symbols: Mapping[str, str] | None) -> str:
    if p.text(payload, "tradingSymbol", required=False) is not None:
        return p.symbol(payload, "tradingSymbol")
    security_id = p.text(payload, "securityId", required=False)
    if security_id is not None and symbols is not None and security_id in symbols:
        return p.symbol({"securityId": symbols[security_id]}, "securityId")
    raise MalformedPayloadError(
        "tradingSymbol", f"is empty and securityId {security_id!r} is not in the instrument map"
    )
