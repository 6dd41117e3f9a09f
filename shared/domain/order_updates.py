"""``ORDER_UPDATE`` pushes: a child rejected, a cascade, an order completed (pure).

Pushed to the order's owner beside ``ROUTING_UPDATE`` and ``EXECUTION_UPDATE``
(``docs/websocket.md``). A child's events are delivered at least once: a client keys them by
``orderId``, ``childOrderId`` and ``event``. An order's final status (``COMPLETED``,
``OVERFILLED``, ``REJECTED``) is announced once per status: whoever first claims the
``(order, status)`` pair in the database pushes it (:data:`FINAL_ORDER_STATUSES`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from shared.domain.orders import ChildOrder, ChildOrderStatus

FINISHED_ORDER_STATUSES = frozenset({"COMPLETED", "OVERFILLED"})
"""Order statuses after which nothing more fills (``UPDATE_ORDER_STATUS`` sets them)."""
FINAL_ORDER_STATUSES = FINISHED_ORDER_STATUSES | {"REJECTED"}
"""Order statuses announced once each: finished, or every child rejected at placement."""


class OrderEvent(StrEnum):
    """What an ``ORDER_UPDATE`` announces."""

    CHILD_REJECTED = "CHILD_REJECTED"
    CHILD_TIMED_OUT = "CHILD_TIMED_OUT"
    CASCADED = "CASCADED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    """Every child was rejected (at placement or after a cascade): nothing of it is working."""


def final_event(order_status: str) -> OrderEvent:
    """The event announcing a final order status (``REJECTED``, else ``COMPLETED``)."""
    return OrderEvent.REJECTED if order_status == "REJECTED" else OrderEvent.COMPLETED


def order_update(
    event: OrderEvent, child: ChildOrder, *, order_status: str | None = None
) -> dict[str, Any]:
    """The ``data`` of one ``ORDER_UPDATE`` about ``child`` (camelCase, JSON-able)."""
    return {
        "event": event.value,
        "orderId": child.order_id,
        "childOrderId": child.child_order_id,
        "brokerId": child.broker_id,
        "symbol": child.symbol,
        "childStatus": child.status.value,
        "quantity": child.quantity,
        "filledQuantity": child.filled_quantity,
        "reason": child.status_reason,
        "cascadedFrom": child.cascaded_from,
        "orderStatus": order_status,
    }


def placement_events(child: ChildOrder) -> list[OrderEvent]:
    """What a placed child announces: a reject or timeout, and whether it is a cascade."""
    events: list[OrderEvent] = []
    if child.cascaded_from is not None:
        events.append(OrderEvent.CASCADED)
    if child.status is ChildOrderStatus.REJECTED:
        events.append(OrderEvent.CHILD_REJECTED)
    elif child.status is ChildOrderStatus.TIMED_OUT:
        events.append(OrderEvent.CHILD_TIMED_OUT)
    return events
