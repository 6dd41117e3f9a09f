"""A trader's reads of their own orders: one order, and the history in keyset pages."""

from __future__ import annotations

from shared.domain.errors import NotFoundError
from shared.domain.history import HistoryQuery, decode_cursor, encode_cursor, last_key
from shared.domain.models import FrozenModel
from shared.domain.order_view import OrderView
from shared.ports import OrderHistory, OrderRepository


class OrderPage(FrozenModel):
    """``GET /orders``: the caller's orders, newest first, and the cursor of the next page."""

    orders: tuple[OrderView, ...]
    next_cursor: str | None = None


class OrderQueries:
    """What ``GET /orders`` and ``GET /orders/{orderId}`` need: only ever the owner's orders."""

    def __init__(self, orders: OrderRepository, *, history: OrderHistory | None = None) -> None:
        self._orders = orders
        self._history = history

    def order_view(self, user_id: str, order_id: str) -> OrderView:
        """The audit trail of ``order_id`` if ``user_id`` owns it.

        Raises
        ------
        NotFoundError
            Unknown, or another trader's (the same answer, so ids cannot be probed).
        DataUnavailableError
            Postgres cannot be reached.
        """
        view = self._orders.get_order_view(user_id, order_id)
        if view is None:
            raise NotFoundError(f"order {order_id} not found")
        return view

    def history(self, user_id: str, query: HistoryQuery, cursor: str | None = None) -> OrderPage:
        """One page of ``user_id``'s orders under ``query``'s filters.

        Raises
        ------
        InvalidRequestError
            ``cursor`` was not issued by this service for these filters (422).
        DataUnavailableError
            Postgres cannot be reached.
        """
        if self._history is None:
            raise NotImplementedError("no order history store is wired")
        if cursor is not None:
            query = query.model_copy(update={"after": decode_cursor(query, cursor)})
        rows = self._history.list_orders(user_id, query)
        page = tuple(rows[: query.limit])
        next_cursor = None
        if len(rows) > query.limit:
            last = page[-1].order
            next_cursor = encode_cursor(query, last_key(last.created_at, last.order_id))
        return OrderPage(orders=page, next_cursor=next_cursor)

    def open_orders(self, user_id: str, *, limit: int = 50) -> list[OrderView]:
        """``user_id``'s orders with a child still working (the ``ROUTING_STATUS`` reply)."""
        if self._history is None:
            return []
        return self._history.open_orders(user_id, limit=limit)
