"""Our generic execution-report JSON (paper broker, custom brokers) -> :class:`ExecutionReport`.

The format, camelCase, one object per request, signed with
:func:`~.verification.sign_webhook`::

    {
      "brokerId": "paper",                  optional; must equal the authenticated broker
      "brokerOrderId": "P-000123",          required
      "childOrderId": "ord-1-c1",           optional (our child order id)
      "exchangeOrderId": "1100000000123",   optional
      "status": "PARTIALLY_FILLED",         OPEN | PARTIALLY_FILLED | FILLED | CANCELLED | REJECTED
      "quantity": 100,                      ordered
      "filledQuantity": 40,                 cumulative
      "averagePrice": "2501.35",            cumulative average; string or number; omit if 0 filled
      "symbol": "RELIANCE",
      "exchange": "NSE",
      "side": "BUY",
      "timestamp": "2026-11-24T09:15:02.123+05:30",   ISO-8601 with offset
      "statusMessage": null                 optional
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.brokers.webhooks import _parsing as p
from shared.domain.errors import AuthenticationError, MalformedPayloadError
from shared.domain.execution import ExecutionReport, ExecutionStatus

# Report field -> field in the body, so a structural error names what the sender sent.
_GENERIC_FIELDS = {
    "broker_order_id": "brokerOrderId",
    "child_order_id": "childOrderId",
    "exchange_order_id": "exchangeOrderId",
    "status_message": "statusMessage",
}


def normalise_generic(payload: Mapping[str, Any], *, broker_id: str) -> ExecutionReport:
    """Normalise one report in our generic format.

    Parameters
    ----------
    payload
        The decoded JSON body.
    broker_id
        The broker the signature was verified for.

    Returns
    -------
    ExecutionReport

    Raises
    ------
    AuthenticationError
        ``brokerId`` names another broker than the one whose secret signed the request.
    MalformedPayloadError
        A missing or ill-typed field (camelCase name), a naive timestamp, an unknown status.
    InvalidExecutionReportError
        Figures that cannot be true (the status must agree with the quantities).
    """
    claimed = p.text(payload, "brokerId", required=False)
    if claimed is not None and claimed != broker_id:
        raise AuthenticationError(
            f"report for broker {claimed!r} signed with the secret of {broker_id!r}"
        )
    raw_status = p.required_text(payload, "status").upper()
    try:
        status = ExecutionStatus(raw_status)
    except ValueError:
        allowed = ", ".join(s.value for s in ExecutionStatus)
        raise MalformedPayloadError("status", f"{raw_status!r} is not one of {allowed}") from None
    quantity = p.integer(payload, "quantity")
    filled = p.integer(payload, "filledQuantity", default=0)
    average_price = p.fill_price(payload, "averagePrice", filled)
    return p.build_report(
        dict(
            broker_id=broker_id,
            broker_order_id=p.required_text(payload, "brokerOrderId"),
            child_order_id=p.text(payload, "childOrderId", required=False),
            exchange_order_id=p.text(payload, "exchangeOrderId", required=False),
            status=status,
            quantity=quantity,
            filled_quantity=filled,
            average_price=average_price,
            symbol=p.symbol(payload, "symbol"),
            exchange=p.exchange(payload, "exchange"),
            side=p.side(payload, "side"),
            # Our own format has no excuse for a local time: refuse rather than guess.
            event_time=p.timestamp(payload, "timestamp", naive_zone=None),
            status_message=p.text(payload, "statusMessage", required=False),
        ),
        _GENERIC_FIELDS,
    )
