"""A trader's reads of their own orders."""

from __future__ import annotations

from shared.domain.errors import NotFoundError
from shared.domain.order_view import OrderView
from shared.ports import OrderRepository


class OrderQueries:
    """What ``GET /orders/{orderId}`` needs: one order, only ever its owner's."""

    def __init__(self, orders: OrderRepository) -> None:
        self._orders = orders

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
