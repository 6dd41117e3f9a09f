"""Upstox order-update webhooks -> :class:`ExecutionReport`.

Format: https://upstox.com/developer/api-documentation/webhook (payload identical to the
WebSocket order stream, ``update_type: "order"``) and the status list at
https://upstox.com/developer/api-documentation/appendix/order-status. Upstox does not sign its
webhooks: verify the URL token with :func:`~.verification.verify_path_token` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.brokers.webhooks import _parsing as p
from shared.domain.errors import UnsupportedPayloadError
from shared.domain.execution import ExecutionReport

# Upstox keeps "open" while an order is partially filled; quantities tell partial fills apart.
UPSTOX_STATUSES: Mapping[str, p.Phase] = {
    "complete": p.Phase.DONE,
    "cancelled": p.Phase.CANCELLED,
    "cancelled after market order": p.Phase.CANCELLED,
    "rejected": p.Phase.REJECTED,
    "open": p.Phase.WORKING,
    "open pending": p.Phase.WORKING,
    "put order req received": p.Phase.WORKING,
    "validation pending": p.Phase.WORKING,
    "trigger pending": p.Phase.WORKING,
    "modified": p.Phase.WORKING,
    "modify pending": p.Phase.WORKING,
    "modify validation pending": p.Phase.WORKING,
    "not modified": p.Phase.WORKING,
    "cancel pending": p.Phase.WORKING,
    "not cancelled": p.Phase.WORKING,
    "after market order req received": p.Phase.WORKING,
    "modify after market order req received": p.Phase.WORKING,
}


def normalise_upstox(payload: Mapping[str, Any], *, broker_id: str) -> ExecutionReport:
    """Normalise one Upstox order update.

    Parameters
    ----------
    payload
        The decoded JSON body.
    broker_id
        Our id of the broker the webhook was addressed to.

    Returns
    -------
    ExecutionReport
        ``child_order_id`` is Upstox's ``tag``; the symbol is ``trading_symbol`` (falling back
        to the deprecated ``tradingsymbol``) without its ``-EQ`` series suffix; ``event_time`` is
        ``exchange_timestamp``, else ``order_timestamp`` (IST).

    Raises
    ------
    MalformedPayloadError
        A missing or ill-typed field, named as Upstox spells it.
    UnsupportedPayloadError
        ``update_type`` other than ``order`` (GTT updates), or a non-cash segment.
    InvalidExecutionReportError
        Figures that cannot be true.
    """
    update_type = p.text(payload, "update_type", required=False)
    if update_type is not None and update_type.lower() != "order":
        raise UnsupportedPayloadError("update_type", f"{update_type!r} is not an order update")
    return p.kite_shaped_report(
        payload,
        broker_id=broker_id,
        table=UPSTOX_STATUSES,
        upper_case=False,
        symbol_keys=("trading_symbol", "tradingsymbol"),
        time_keys=("exchange_timestamp", "order_timestamp"),
    )
