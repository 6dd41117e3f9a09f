"""Zerodha Kite Connect postbacks -> :class:`ExecutionReport`.

Format: https://kite.trade/docs/connect/v3/postbacks/ (sample payload and checksum rule). Fields
are cumulative (``filled_quantity``, ``average_price``); timestamps are IST without an offset.
Verify the checksum with :func:`~.verification.verify_kite_checksum` before normalising.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.brokers.webhooks import _parsing as p
from shared.domain.execution import ExecutionReport

# Postbacks carry COMPLETE, CANCEL, REJECTED and UPDATE; the same body also comes over Kite's
# WebSocket order updates, which use the order-book labels, so both vocabularies are accepted.
KITE_STATUSES: Mapping[str, p.Phase] = {
    "COMPLETE": p.Phase.DONE,
    "CANCEL": p.Phase.CANCELLED,
    "CANCELLED": p.Phase.CANCELLED,
    "REJECTED": p.Phase.REJECTED,
    "UPDATE": p.Phase.WORKING,
    "OPEN": p.Phase.WORKING,
    "OPEN PENDING": p.Phase.WORKING,
    "PUT ORDER REQ RECEIVED": p.Phase.WORKING,
    "VALIDATION PENDING": p.Phase.WORKING,
    "TRIGGER PENDING": p.Phase.WORKING,
    "MODIFIED": p.Phase.WORKING,
    "MODIFY PENDING": p.Phase.WORKING,
    "MODIFY VALIDATION PENDING": p.Phase.WORKING,
    "CANCEL PENDING": p.Phase.WORKING,
    "AMO REQ RECEIVED": p.Phase.WORKING,
}


def normalise_kite(payload: Mapping[str, Any], *, broker_id: str) -> ExecutionReport:
    """Normalise one Kite postback.

    Parameters
    ----------
    payload
        The decoded JSON body (see :func:`~._parsing.parse_json_body`).
    broker_id
        Our id of the broker the webhook was addressed to (from the URL, already verified).

    Returns
    -------
    ExecutionReport
        ``child_order_id`` is Kite's ``tag`` (we place orders with our child id as the tag);
        ``event_time`` is ``exchange_update_timestamp``, else ``exchange_timestamp``, else
        ``order_timestamp``.

    Raises
    ------
    MalformedPayloadError
        A missing or ill-typed field, named as Kite spells it.
    UnsupportedPayloadError
        An exchange other than NSE/BSE cash (NFO, MCX...).
    InvalidExecutionReportError
        Figures that cannot be true (filled more than ordered, a non-positive average price...).
    """
    return p.kite_shaped_report(
        payload,
        broker_id=broker_id,
        table=KITE_STATUSES,
        upper_case=True,
        symbol_keys=("tradingsymbol",),
        time_keys=("exchange_update_timestamp", "exchange_timestamp", "order_timestamp"),
    )
