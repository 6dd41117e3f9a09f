"""Hostile input on the trader API: every class of bad request gets a 4xx in the one error shape
and stores nothing.

Each case is sent to the real handler (real Postgres, Redis and wiring) as API Gateway would
deliver it; each asserts the status, that the body is exactly ``{"error": {"code", "message",
...}}``, the code and field where one is named, and that the database holds no order, decision,
allocation, child order or outbox row afterwards.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest

from functions.route_order import handler
from local.apigw import LocalLambdaContext, http_api_event
from shared.domain.contracts import ApiPath
from shared.domain.models import MAX_PRICE, Exchange
from shared.http import MAX_JSON_DEPTH, MAX_ORDER_BODY_BYTES
from shared.ports import TraderLimitOverrides
from shared.wiring import Wiring
from tests.handlers.support import API, TRADER, call

SMART = f"{API}/orders/smart"
ANALYZE = f"{API}/orders/analyze"
ORDER_ROUTES = pytest.mark.parametrize("path", [SMART, ANALYZE], ids=["smart", "analyze"])
"""Both JSON routes share the screening; the classes below run on both, the rest on smart."""
SMART_ONLY = pytest.mark.parametrize("path", [SMART], ids=["smart"])
ORDER: dict[str, Any] = {"symbol": "RELIANCE", "side": "BUY", "quantity": 10, "orderType": "MARKET"}
LIMIT = {**ORDER, "orderType": "LIMIT", "limitPrice": "1290.05"}
TABLES = ("orders", "order_routing_decisions", "order_allocations", "child_orders", "event_outbox")


def stored(wiring: Wiring) -> dict[str, int]:
    """Rows in every table an order writes."""
    with wiring.database.connection() as conn:
        return {
            t: int(conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"])  # type: ignore[index]
            for t in TABLES
        }


def send(
    path: str,
    body: bytes | str | None,
    *,
    content_type: str | None = "application/json",
    method: str = "POST",
    claims: dict[str, Any] | None = TRADER,
) -> tuple[int, Any, dict[str, str]]:
    """The handler's answer to a raw request (bytes that are not UTF-8 arrive base64-encoded)."""
    headers = {"content-type": content_type} if content_type is not None else {}
    event = http_api_event(method, path, body=body, headers=headers, claims=claims)
    response = handler.lambda_handler(event, LocalLambdaContext("test"))
    raw = response.get("body")
    return response["statusCode"], json.loads(raw) if raw else None, response.get("headers", {})


def assert_refused(
    answer: tuple[int, Any, dict[str, str]], status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """The answer is ``status`` in the one error shape with ``code`` (and ``field``)."""
    got, body, _ = answer
    assert got == status, body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["code"] == code, body
    if field is not None:
        named = [error.get("field")] + [d["field"] for d in error.get("details") or []]
        assert field in named, body
    return dict(error)


@pytest.fixture
def no_risk_limits(wiring: Wiring) -> Wiring:
    """The wiring, with trader-1's risk limits and RELIANCE's price band as wide as storage allows.

    What is left to refuse an enormous order is the engine's storage bound (docs/api.md).
    """
    wiring.risk_state.upsert_limits(
        "trader-1",
        TraderLimitOverrides(
            max_order_quantity=10**9,
            max_order_value_inr=Decimal("99999999999999.99"),
            max_open_orders=10**6,
        ),
    )
    reliance = wiring.instruments.get("RELIANCE", Exchange.NSE)
    assert reliance is not None
    wiring.instruments.upsert(
        dataclasses.replace(reliance, band_lower=Decimal("0.05"), band_upper=MAX_PRICE)
    )
    return wiring


def nothing_stored(wiring: Wiring) -> None:
    assert stored(wiring) == dict.fromkeys(TABLES, 0)


# -- bytes: encoding, media type, size, depth, syntax ----------------------------------------


@ORDER_ROUTES
@pytest.mark.parametrize(
    "body",
    [b"\xa5", b'{"symbol": "\xff\xfe", "side": "BUY"}', "ORDER".encode("utf-16")],
    ids=["lone-byte", "latin1-in-string", "utf16"],
)
def test_a_body_that_is_not_utf8_is_400(wiring: Wiring, path: str, body: bytes) -> None:
    # GIVEN bytes that are not UTF-8; WHEN they are posted as JSON
    answer = send(path, body)
    # THEN 400, nothing stored
    assert_refused(answer, 400, "MALFORMED_BODY")
    nothing_stored(wiring)


@SMART_ONLY
@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/xml",
        "application/json; charset=latin-1",
        "",
        None,
    ],
)
def test_a_body_that_is_not_json_by_its_media_type_is_415(
    wiring: Wiring, path: str, content_type: str | None
) -> None:
    # GIVEN a valid order sent with another (or no) Content-Type
    answer = send(path, json.dumps(ORDER), content_type=content_type)
    # THEN 415 naming the header, nothing stored
    assert_refused(answer, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    nothing_stored(wiring)


def test_json_with_a_charset_of_utf8_is_accepted(wiring: Wiring) -> None:
    # GIVEN the media type with its UTF-8 charset parameter; WHEN analysed
    status, body, _ = send(
        ANALYZE, json.dumps(ORDER), content_type="application/json; charset=UTF-8"
    )
    # THEN it is read
    assert status == 200, body


@SMART_ONLY
def test_a_body_over_the_order_limit_is_413(wiring: Wiring, path: str) -> None:
    # GIVEN an order padded past 16 KiB
    body = json.dumps({**ORDER, "clientOrderId": "x" * MAX_ORDER_BODY_BYTES})
    # THEN 413 before anything is parsed
    assert_refused(send(path, body), 413, "PAYLOAD_TOO_LARGE")
    nothing_stored(wiring)


@SMART_ONLY
@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,
        "{" + '"a":{' * 2000 + "}" * 2001,
        json.dumps({**ORDER, "quote": {"bid": "1"}}).replace(
            '"1"', "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
        ),
    ],
    ids=["array-5000", "object-2000", "nested-in-a-field"],
)
def test_json_nested_deeper_than_the_bound_is_400(wiring: Wiring, path: str, body: str) -> None:
    # GIVEN JSON nested past 32 levels (5,000 would exhaust the parser's recursion)
    # THEN 400, no RecursionError
    assert_refused(send(path, body), 400, "BODY_TOO_DEEP")
    nothing_stored(wiring)


def test_brackets_inside_strings_do_not_count_as_depth(wiring: Wiring) -> None:
    # GIVEN a client order id full of brackets (not valid for the field, but not deep JSON)
    body = json.dumps({**ORDER, "clientOrderId": "[{" * 100})
    # THEN the schema refuses it (422), not the depth bound
    assert_refused(send(ANALYZE, body), 422, "VALIDATION_FAILED", "clientOrderId")


@SMART_ONLY
@pytest.mark.parametrize(
    "body",
    ["{not json", "", '{"quantity": NaN}', "Infinity", '{"quantity": 1' + "0" * 5000 + "}"],
    ids=["broken", "empty", "nan", "infinity", "int-of-5000-digits"],
)
def test_malformed_json_is_400(wiring: Wiring, path: str, body: str) -> None:
    # GIVEN a body that is not (standard) JSON; THEN 400
    assert_refused(send(path, body), 400, "MALFORMED_JSON")
    nothing_stored(wiring)


# -- shape: one object, strict types --------------------------------------------------------


@ORDER_ROUTES
@pytest.mark.parametrize("body", [[ORDER, ORDER], [ORDER], "RELIANCE", 10, None, True], ids=str)
def test_a_body_that_is_not_one_object_is_422_and_nothing_is_placed(
    wiring: Wiring, path: str, body: Any
) -> None:
    # GIVEN two orders in an array (or any JSON that is not an object)
    # THEN the whole body is refused, naming it; not even the first order is placed
    assert_refused(send(path, json.dumps(body)), 422, "VALIDATION_FAILED", "body")
    nothing_stored(wiring)


@SMART_ONLY
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": True}, "quantity"),
        ({"quantity": "10"}, "quantity"),
        ({"quantity": 10.0}, "quantity"),
        ({"quantity": 1e3}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -5}, "quantity"),
        ({"quantity": 10**10}, "quantity"),
        ({"maxBrokers": True}, "maxBrokers"),
        ({"maxBrokers": "2"}, "maxBrokers"),
        ({"orderType": "LIMIT", "limitPrice": True}, "limitPrice"),
        ({"orderType": "LIMIT", "limitPrice": "NaN"}, "limitPrice"),
        ({"orderType": "LIMIT", "limitPrice": "12.00001"}, "limitPrice"),
        ({"quote": {"bid": False, "ask": "1290.10"}}, "quote.bid"),
        ({"side": "buy"}, "side"),
        ({"symbol": "reliance"}, "symbol"),
        ({"extra": 1}, "extra"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
def test_loose_types_are_refused_naming_the_field(
    wiring: Wiring, path: str, change: dict[str, Any], field: str
) -> None:
    # GIVEN an order whose field is a boolean, a string, a float or out of range
    answer = send(path, json.dumps({**ORDER, **change}))
    # THEN 422 names the field; nothing stored
    assert_refused(answer, 422, "VALIDATION_FAILED", field)
    nothing_stored(wiring)


# -- bounds that would overflow the columns, the tick grid, the symbol -----------------------


@SMART_ONLY
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"orderType": "LIMIT", "limitPrice": "99999999.9999", "quantity": 1_000_000},
            "limitPrice",
        ),
        ({"quote": {"bid": "99999999.9999", "ask": "99999999.9999"}}, "quote.bid"),
        ({"orderType": "STOP_LOSS_MARKET", "triggerPrice": "1000000.05"}, "triggerPrice"),
    ],
    ids=["limit-at-column-max", "quote-at-column-max", "trigger-over-max"],
)
def test_prices_beyond_the_bound_are_422(
    wiring: Wiring, path: str, change: dict[str, Any], field: str
) -> None:
    # GIVEN prices the DECIMAL(12,4) columns hold but derived values would overflow
    answer = send(path, json.dumps({**ORDER, **change}))
    # THEN 422 naming the price (not a Postgres overflow and a 500)
    assert_refused(answer, 422, "VALIDATION_FAILED", field)
    nothing_stored(wiring)


@SMART_ONLY
@pytest.mark.parametrize(
    "change",
    [
        {"orderType": "LIMIT", "limitPrice": "999999.95", "quantity": 1_000_000},
        {"quantity": 1_000_000_000},
    ],
    ids=["limit", "market"],
)
def test_an_order_value_over_the_limit_is_422_on_quantity(
    no_risk_limits: Wiring, path: str, change: dict[str, Any]
) -> None:
    # GIVEN a trader whom no risk limit stops, and an order worth more than INR 500 crore (a
    #       market order's value from the reference): only the storage bound is left
    wiring = no_risk_limits
    answer = send(path, json.dumps({**ORDER, **change}))
    # THEN 422 names the quantity; nothing stored
    assert_refused(answer, 422, "INVALID_ORDER", "quantity")
    nothing_stored(wiring)


def test_the_largest_accepted_order_is_stored_without_overflow(no_risk_limits: Wiring) -> None:
    # GIVEN a trader whom no risk limit stops, and a limit order at the highest price and just
    #       under the storage value limit
    wiring = no_risk_limits
    body = {**ORDER, "orderType": "LIMIT", "limitPrice": "1000000.00", "quantity": 4_999}
    # WHEN it is placed
    status, result, _ = send(SMART, json.dumps(body))
    # THEN it is routed and stored once (every derived amount fits its column)
    assert status == 200, result
    assert stored(wiring)["orders"] == 1


@ORDER_ROUTES
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"orderType": "LIMIT", "limitPrice": "0.0001"}, "limitPrice"),
        ({"orderType": "LIMIT", "limitPrice": "1290.13"}, "limitPrice"),
        ({"orderType": "STOP_LOSS_MARKET", "triggerPrice": "1290.01"}, "triggerPrice"),
        (
            {"orderType": "STOP_LOSS", "limitPrice": "1290.05", "triggerPrice": "1290.02"},
            "triggerPrice",
        ),
    ],
    ids=["0.0001", "1290.13", "trigger", "sl-trigger"],
)
def test_prices_off_the_tick_grid_are_422(
    wiring: Wiring, path: str, change: dict[str, Any], field: str
) -> None:
    # GIVEN a price that is not a multiple of the 0.05 tick
    answer = send(path, json.dumps({**ORDER, **change}))
    # THEN 422 names the field
    assert_refused(answer, 422, "VALIDATION_FAILED", field)
    nothing_stored(wiring)


@ORDER_ROUTES
def test_an_unknown_symbol_is_422_naming_symbol(wiring: Wiring, path: str) -> None:
    # GIVEN a well-formed symbol the instrument master does not list
    answer = send(path, json.dumps({**ORDER, "symbol": "NOSUCHCO"}))
    # THEN 422 names the field, not "no brokers configured" (pre-trade risk finds it first)
    error = assert_refused(answer, 422, "RISK_REJECTED", "symbol")
    assert "NOSUCHCO" in error["message"]
    nothing_stored(wiring)


# -- routes and methods ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [f"{API}/nothing", f"{API}/orders/smart/extra", "/api/v1/nowhere", f"{API}/orders/x/y"]
)
def test_unknown_paths_are_404_in_the_one_shape(wiring: Wiring, path: str) -> None:
    # GIVEN a path no route serves; THEN 404 in the error shape (not Powertools' own body)
    assert_refused(send(path, None, method="GET"), 404, "NOT_FOUND")
    nothing_stored(wiring)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", SMART, "POST"),
        ("PUT", SMART, "POST"),
        ("DELETE", f"{API}/orders/ord-1", "GET"),
        ("POST", ApiPath.HEALTH, "GET"),
        ("PATCH", f"{API}/brokers/profiles", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    wiring: Wiring, method: str, path: str, allow: str
) -> None:
    # GIVEN a path that exists, asked with a method it does not serve
    answer = send(path, json.dumps(ORDER), method=method)
    # THEN 405 lists the allowed methods (a static path is never read as an order id)
    error = assert_refused(answer, 405, "METHOD_NOT_ALLOWED")
    assert answer[2]["Allow"] == allow
    assert error["allow"] == [allow]
    nothing_stored(wiring)


def test_authorization_comes_before_the_body(wiring: Wiring) -> None:
    # GIVEN no claims (no authorizer) and a hostile body
    answer = send(SMART, b"\xa5", claims=None)
    # THEN 401, the body unread
    assert_refused(answer, 401, "UNAUTHENTICATED")


def test_an_unexpected_error_is_500_in_the_one_shape(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a bug: the analytics service raises something nobody mapped
    def broken(*_: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(wiring.analytics, "execution_analytics", broken)
    # WHEN the route runs
    answer = call(handler, "GET", f"{API}/analytics/execution")
    # THEN 500 in the error shape, without the exception's text
    error = assert_refused(answer, 500, "INTERNAL")
    assert "bug" not in error["message"]
