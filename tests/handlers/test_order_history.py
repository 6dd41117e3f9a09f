"""GET /orders (a trader's order history) through route_order: real Postgres and Redis."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from functions.route_order import handler
from shared.wiring import Wiring
from tests.handlers.support import ADMIN, API, OTHER_TRADER, TRADER, call

ORDERS = f"{API}/orders"


def _submit(n: int, *, symbol: str = "RELIANCE", claims: dict[str, Any] = TRADER) -> str:
    body = {
        "symbol": symbol,
        "side": "BUY",
        "quantity": 10,
        "orderType": "MARKET",
        "routingObjective": "SMART_BALANCE",
        "clientOrderId": f"hist-{claims['sub']}-{symbol}-{n}",
    }
    status, answer, _ = call(handler, "POST", f"{API}/orders/smart", body=body, claims=claims)
    assert status == 200, answer
    return str(answer["orderId"])


def _page(query: dict[str, str], claims: dict[str, Any] = TRADER) -> tuple[int, Any]:
    status, body, _ = call(handler, "GET", ORDERS, query=query, claims=claims)
    return status, body


def test_pages_walk_every_order_once_newest_first_and_stay_stable_under_inserts(
    wiring: Wiring,
) -> None:
    # GIVEN five orders of the trader and one of another trader
    mine = [_submit(n) for n in range(5)]
    _submit(0, claims=OTHER_TRADER)
    # WHEN the trader reads pages of two, and a new order arrives between pages
    status, first = _page({"limit": "2"})
    assert status == 200, first
    newer = _submit(99)
    pages = [first]
    while pages[-1]["nextCursor"]:
        status, nxt = _page({"limit": "2", "cursor": pages[-1]["nextCursor"]})
        assert status == 200, nxt
        pages.append(nxt)
    # THEN the pages hold exactly the five first orders, newest first, each once, no other's
    seen = [o["order"]["orderId"] for p in pages for o in p["orders"]]
    assert seen == list(reversed(mine))
    assert newer not in seen
    assert [len(p["orders"]) for p in pages] == [2, 2, 1]
    # AND each item is the full view (decision, children)
    assert pages[0]["orders"][0]["childOrders"]
    # AND a fresh first page starts with the new order
    assert _page({"limit": "1"})[1]["orders"][0]["order"]["orderId"] == newer


def test_filters_by_symbol_status_and_time(wiring: Wiring) -> None:
    # GIVEN orders on two symbols
    reliance = _submit(1, symbol="RELIANCE")
    tcs = _submit(1, symbol="TCS")
    # WHEN filtered by symbol, by a status nobody has and by a window in the future
    _, by_symbol = _page({"symbol": "TCS"})
    _, by_status = _page({"status": "CANCELLED"})
    _, future = _page({"since": "2999-01-01T00:00:00Z"})
    _, window = _page({"since": "2000-01-01T00:00:00+05:30", "until": "2999-01-01T00:00:00Z"})
    # THEN each answers only what matches
    assert [o["order"]["orderId"] for o in by_symbol["orders"]] == [tcs]
    assert by_status == {"orders": [], "nextCursor": None}
    assert future["orders"] == []
    assert {o["order"]["orderId"] for o in window["orders"]} == {reliance, tcs}


def _tampered(cursor: str) -> str:
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw["t"] = "yesterday"
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": "W10"},  # base64 of [] (JSON, not an object)
        {"cursor": "%%%"},
        {"symbol": "lower case"},
        {"since": "2024-01-01T00:00:00"},  # no zone
        {"since": "tomorrow"},
        {"status": "filled; drop"},
    ],
)
def test_bad_queries_are_4xx_in_the_one_shape(wiring: Wiring, query: dict[str, str]) -> None:
    # GIVEN a trader with an order
    _submit(1)
    # WHEN the history is asked with a bad limit, cursor or filter
    status, body = _page(query)
    # THEN it is a 422 naming what, never a 500
    assert status == 422, body
    assert body["error"]["code"] in ("VALIDATION_FAILED", "INVALID_REQUEST")


def test_a_cursor_tampered_or_reused_with_other_filters_is_refused(wiring: Wiring) -> None:
    # GIVEN a first page with a cursor
    for n in range(3):
        _submit(n)
    _, first = _page({"limit": "1"})
    cursor = first["nextCursor"]
    assert cursor
    # WHEN the cursor is altered, or sent with other filters
    altered_status, altered = _page({"limit": "1", "cursor": _tampered(cursor)})
    other_status, other = _page({"limit": "1", "cursor": cursor, "symbol": "TCS"})
    # THEN both are 422 INVALID_REQUEST on the cursor field
    assert (altered_status, altered["error"]["field"]) == (422, "cursor")
    assert (other_status, other["error"]["code"]) == (422, "INVALID_REQUEST")


def test_only_traders_read_history(wiring: Wiring) -> None:
    # GIVEN an operator token and no token
    # WHEN each asks for a trader's history
    admin_status, admin_body = _page({}, claims=ADMIN)
    anonymous, _, _ = call(handler, "GET", ORDERS, claims=None)
    # THEN 403 and 401
    assert (admin_status, admin_body["error"]["code"]) == (403, "FORBIDDEN")
    assert anonymous == 401
