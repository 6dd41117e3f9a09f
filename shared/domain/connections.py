"""A trader's open WebSocket connection and the updates it asked for (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """One open connection, its owner and its subscription filters (empty = everything).

    ``trader`` is ``False`` for an operator's connection (an ADMIN token without TRADER): it
    receives broadcasts (``BROKER_STATUS``) and replies, never any trader's order updates.
    """

    connection_id: str
    user_id: str
    order_ids: frozenset[str] = frozenset()
    symbols: frozenset[str] = frozenset()
    trader: bool = True

    @property
    def filtered(self) -> bool:
        """True when the connection asked for specific orders or symbols only."""
        return bool(self.order_ids or self.symbols)

    def wants(self, data: Mapping[str, Any]) -> bool:
        """Whether an update with this ``data`` should reach the connection.

        A connection without filters receives everything of its owner. With filters, an update
        passes when its ``orderId``/``order_id`` is among the subscribed orders OR its
        ``symbol`` among the subscribed symbols; an update carrying neither does not pass.
        """
        if not self.filtered:
            return True
        order_id = data.get("orderId", data.get("order_id"))
        if order_id is not None and str(order_id) in self.order_ids:
            return True
        symbol = data.get("symbol")
        return symbol is not None and str(symbol) in self.symbols
