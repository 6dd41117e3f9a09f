"""Reading a broker's order-book entry into a :class:`BrokerOrderState`.

Order-book entries and postbacks share their field names at each broker, so the readers of the
webhook normalisers (:mod:`shared.adapters.brokers.webhooks._parsing`) serve both: one status
table per broker, one way of refining a status by the quantities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.brokers.webhooks import _parsing as p
from shared.domain.broker_orders import BrokerCallError, BrokerErrorKind, BrokerOrderState
from shared.domain.errors import MalformedPayloadError


@dataclass(frozen=True, slots=True)
class OrderBookFields:
    """One broker's names of the order-book fields."""

    table: Mapping[str, p.Phase]
    upper_case: bool
    order_id: str
    status: str
    quantity: str
    filled: str
    average: str
    tag: str
    reason: str
    exchange_order_id: str
    placed_at: Sequence[str]
    updated_at: Sequence[str]
    done_means_filled: bool = False


def _time(entry: Mapping[str, Any], keys: Sequence[str]) -> datetime | None:
    try:
        return p.timestamp(entry, *keys)
    except MalformedPayloadError:
        return None


def order_state(entry: Any, fields: OrderBookFields, *, broker: str) -> BrokerOrderState:
    """Read one order-book entry.

    Raises
    ------
    BrokerCallError
        ``SERVER``: the entry is not what the broker documents (we cannot tell the order's
        state, so the caller must treat it as unknown).
    """
    if not isinstance(entry, Mapping):
        raise BrokerCallError(BrokerErrorKind.SERVER, f"{broker} order entry is not an object")
    try:
        state = p.fill_state(
            entry,
            table=fields.table,
            status_key=fields.status,
            quantity_key=fields.quantity,
            filled_key=fields.filled,
            average_key=fields.average,
            upper_case=fields.upper_case,
            done_means_filled=fields.done_means_filled,
        )
        return BrokerOrderState(
            broker_order_id=p.required_text(entry, fields.order_id),
            status=state.status,
            broker_status=state.raw_status,
            quantity=state.quantity,
            filled_quantity=state.filled,
            average_price=state.average_price,
            reason=p.text(entry, fields.reason, required=False),
            tag=p.text(entry, fields.tag, required=False),
            exchange_order_id=p.text(entry, fields.exchange_order_id, required=False),
            placed_at=_time(entry, fields.placed_at),
            updated_at=_time(entry, fields.updated_at),
        )
    except MalformedPayloadError as exc:
        raise BrokerCallError(
            BrokerErrorKind.SERVER, f"unreadable {broker} order entry: {exc}"
        ) from exc
    except ValueError as exc:
        # pydantic's ValidationError (negative quantities and the like) is a ValueError.
        raise BrokerCallError(
            BrokerErrorKind.SERVER, f"impossible {broker} order entry: {exc}"
        ) from exc
