"""OrderQueries on the in-memory fakes: a trader reads only their own orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.domain.errors import NotFoundError
from shared.domain.models import Quote
from shared.services.orders import OrderQueries
from shared.services.schemas import SmartOrderRequest
from tests import factories
from tests.fakes import routing_world

BODY = {"symbol": "RELIANCE", "side": "BUY", "quantity": 100, "orderType": "MARKET"}


def test_the_owner_reads_the_order_and_anyone_else_gets_not_found() -> None:
    # GIVEN an order of trader-1, routed on the fakes
    w = routing_world(
        [factories.profile(b) for b in ("zerodha", "upstox")],
        now=factories.NOW,
        quotes={"RELIANCE": Quote(bid=Decimal("2949.95"), ask=Decimal("2950.05"))},
    )
    result = w.service.submit(
        SmartOrderRequest.model_validate(BODY), user_id="trader-1", key="k-1"
    ).result
    queries = OrderQueries(w.orders)
    # WHEN its owner and another trader ask for it, and the owner asks for an unknown id
    view = queries.order_view("trader-1", result.order_id)
    # THEN the owner sees it with its children; the others get the same 404 answer
    assert view.order.order_id == result.order_id
    assert sum(c.quantity for c in view.child_orders) == 100
    with pytest.raises(NotFoundError):
        queries.order_view("trader-2", result.order_id)
    with pytest.raises(NotFoundError):
        queries.order_view("trader-1", "ord-unknown")
