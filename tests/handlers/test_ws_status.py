"""The WebSocket ``status`` action (ROUTING_STATUS) and ORDER_UPDATE pushes, on real Postgres/Redis.

The replies go through a recording sender here; tests/integration/websocket and tests/e2e send
them over the management API and a real socket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from functions.admin import handler as admin
from functions.route_order import handler as route_order
from shared.adapters.postgres.admin import PostgresBrokerAdministration
from shared.domain.contracts import ADMIN_PREFIX, MessageType
from shared.domain.models import Exchange, OrderType, Product, Side
from shared.domain.order_updates import OrderEvent
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.services.connections import ConnectionService
from shared.wiring import Wiring
from tests.handlers.support import ADMIN, API, TRADER, RecordingNotifier, call


class NoTokens:
    """The status action never verifies a token (the connection is already registered)."""

    def verify(self, token: str | None) -> Any:
        raise AssertionError("not called")


class Replies:
    """A ReplySender that remembers every reply."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def reply(self, connection_id: str, message_type: MessageType, data: Mapping[str, Any]) -> bool:
        self.sent.append((connection_id, message_type, json.loads(json.dumps(dict(data)))))
        return True


def _child(**changes: Any) -> ChildOrder:
    fields: dict[str, Any] = {
        "child_order_id": "c-1",
        "order_id": "ord-1",
        "user_id": TRADER["sub"],
        "broker_id": "zerodha",
        "symbol": "RELIANCE",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "quantity": 10,
        "order_type": OrderType.MARKET,
        "product": Product.CNC,
    }
    return ChildOrder(**{**fields, **changes})


def _service(wiring: Wiring, replies: Replies) -> ConnectionService:
    return ConnectionService(
        NoTokens(),
        wiring.connection_registry,
        replies,
        brokers=PostgresBrokerAdministration(wiring.database),
        orders=wiring.orders,
    )


def test_status_lists_brokers_states_and_the_traders_open_orders(wiring: Wiring) -> None:
    # GIVEN a routed order whose children are still working (no report tracked yet)
    body = {"symbol": "RELIANCE", "side": "BUY", "quantity": 50, "orderType": "MARKET"}
    status, routed, _ = call(route_order, "POST", f"{API}/orders/smart", body=body)
    assert status == 200, routed
    # AND a broker in MAINTENANCE, and a connection of the trader
    assert (
        call(
            admin,
            "PUT",
            f"{ADMIN_PREFIX}/brokers/dhan/status",
            body={"status": "MAINTENANCE", "reason": "upgrade"},
            claims=ADMIN,
        )[0]
        == 200
    )
    wiring.connection_registry.register("conn-1", "trader-1")
    replies = Replies()
    # WHEN the client asks for the routing status
    _service(wiring, replies).handle_message("conn-1", '{"action": "status"}')
    # THEN it gets ROUTING_STATUS on that connection: every broker's state and its open order
    [(conn, kind, data)] = replies.sent
    assert (conn, kind) == ("conn-1", MessageType.ROUTING_STATUS)
    states = {b["brokerId"]: (b["status"], b["reason"]) for b in data["brokers"]}
    assert states["dhan"] == ("MAINTENANCE", "upgrade")
    assert states["zerodha"] == ("ACTIVE", None)
    assert [o["order"]["orderId"] for o in data["openOrders"]] == [routed["orderId"]]


def test_an_operator_gets_brokers_states_and_no_orders(wiring: Wiring) -> None:
    # GIVEN a trader's working order, a broker in MAINTENANCE, and an operator's connection
    # (ADMIN only) under the trader's own user id
    body = {"symbol": "RELIANCE", "side": "BUY", "quantity": 50, "orderType": "MARKET"}
    status, routed, _ = call(route_order, "POST", f"{API}/orders/smart", body=body)
    assert status == 200, routed
    status_change = {"status": "MAINTENANCE", "reason": "upgrade"}
    assert (
        call(admin, "PUT", f"{ADMIN_PREFIX}/brokers/dhan/status", body=status_change, claims=ADMIN)[
            0
        ]
        == 200
    )
    wiring.connection_registry.register("op-1", str(TRADER["sub"]), trader=False)
    replies = Replies()
    # WHEN the operator asks for the routing status
    _service(wiring, replies).handle_message("op-1", '{"action": "status"}')
    # THEN it gets every broker's state and no order at all
    [(conn, kind, data)] = replies.sent
    assert (conn, kind) == ("op-1", MessageType.ROUTING_STATUS)
    states = {b["brokerId"]: b["status"] for b in data["brokers"]}
    assert states["dhan"] == "MAINTENANCE"
    assert data["openOrders"] == []


def test_status_of_an_unknown_connection_or_without_postgres_is_an_error(
    wiring: Wiring, unreachable_postgres: Any
) -> None:
    # GIVEN no registered connection, and then a service whose Postgres is down
    replies = Replies()
    _service(wiring, replies).handle_message("nobody", '{"action": "status"}')
    down = Wiring(unreachable_postgres, notifier=RecordingNotifier())
    wiring.connection_registry.register("conn-2", "trader-1")
    service = ConnectionService(
        NoTokens(),
        wiring.connection_registry,
        replies,
        brokers=PostgresBrokerAdministration(down.database),
        orders=down.orders,
    )
    # WHEN each asks for the status
    service.handle_message("conn-2", '{"action": "status"}')
    down.database.close()
    # THEN each gets an ERROR naming why, never an exception
    codes = [(c, k, d["code"]) for c, k, d in replies.sent]
    assert codes == [
        ("nobody", MessageType.ERROR, "UNKNOWN_CONNECTION"),
        ("conn-2", MessageType.ERROR, "UNAVAILABLE"),
    ]


def test_a_rejected_or_cascaded_placement_is_pushed_as_order_update(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN a child that a broker rejected and one cascaded from it
    rejected = _child(status=ChildOrderStatus.REJECTED, status_reason="RMS: margin")
    cascaded = _child(
        child_order_id="c-2", cascaded_from=rejected.child_order_id, status=ChildOrderStatus.PLACED
    )
    # WHEN the tracker hears of their placement
    wiring.tracker.child_placed(rejected)
    wiring.tracker.child_placed(cascaded)
    # THEN the owner gets one ORDER_UPDATE each, naming the event and the reason
    updates = [(k, d["event"], d["childOrderId"]) for _, k, d in notifier.messages]
    assert updates == [
        (MessageType.ORDER_UPDATE, OrderEvent.CHILD_REJECTED, rejected.child_order_id),
        (MessageType.ORDER_UPDATE, OrderEvent.CASCADED, "c-2"),
    ]
    assert notifier.messages[0][2]["reason"] == "RMS: margin"
