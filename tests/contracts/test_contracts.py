"""Contract tests: each adapter against requests and answers recorded from its broker's
documentation or its official client's test fixtures (``tests/contracts/<broker>/*.json``).

A fixture names its ``source``, the adapter ``call`` to make, the ``exchanges`` (what the
adapter must send, what the broker answered) and what the adapter must ``expect``. A replay
server on loopback checks each request and plays each answer back:

* method, path and query match; every recorded header is sent with its value;
* every recorded body field is sent with an equal value (numbers compare as numbers; a field
  recorded as ``""`` or ``null`` may be left out; ``deviations`` lists fields we deliberately
  send differently); a field not recorded may be sent only if ``allowed_extra`` names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.simulators._core import RunningServer, free_port, serve
from shared.adapters.brokers.dhan import DhanClient
from shared.adapters.brokers.gateway import TaggedClient
from shared.adapters.brokers.kite import KiteClient
from shared.adapters.brokers.kite_market import KiteMarketData
from shared.adapters.brokers.upstox import UpstoxClient
from shared.domain.broker_orders import (
    BrokerAccount,
    BrokerCallError,
    BrokerOrderChange,
    BrokerOrderRequest,
)
from shared.domain.errors import MarketDataUnavailableError
from shared.domain.market import listing_of
from shared.domain.models import Exchange

HERE = Path(__file__).parent
FIXTURES = sorted(HERE.glob("*/*.json"))


class Replay:
    """Answers queued exchanges in order and keeps what it received."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        if not self.exchanges:
            return Response("unexpected request", status_code=599)
        answer = self.exchanges.pop(0)["response"]
        content = answer["raw"] if "raw" in answer else json.dumps(answer["body"])
        return Response(content, status_code=answer["status"], media_type="application/json")


@pytest.fixture(scope="module")
def replay() -> Iterator[tuple[Replay, RunningServer]]:
    state = Replay()
    app = Starlette(
        routes=[Route("/{path:path}", state.handle, methods=["GET", "POST", "PUT", "DELETE"])]
    )
    server = serve(app, free_port())
    try:
        yield state, server
    finally:
        server.stop()


def client_for(broker: str, fixture: Mapping[str, Any], url: str) -> TaggedClient:
    if broker == "kite":
        return KiteClient(url)
    if broker == "upstox":
        return UpstoxClient(url, instruments=fixture.get("instruments", {}))
    return DhanClient(url, security_ids=fixture.get("security_ids", {}))


def account_of(fixture: Mapping[str, Any]) -> BrokerAccount:
    raw = fixture["account"]
    return BrokerAccount(
        account_id="contract",
        api_key=raw.get("api_key", ""),
        client_id=raw.get("client_id", ""),
        access_token=SecretStr(raw["access_token"]),
    )


def call(client: TaggedClient, account: BrokerAccount, spec: Mapping[str, Any]) -> Any:
    op = spec["op"]
    if op == "place":
        return client.place(account, BrokerOrderRequest.model_validate(spec["order"]), timeout_s=5)
    if op == "modify":
        change = BrokerOrderChange.model_validate(spec["change"])
        return client.modify(account, spec["order_id"], change, timeout_s=5)
    if op == "cancel":
        return client.cancel(account, spec["order_id"], timeout_s=5)
    if op == "find_by_tag":
        return client.find_by_tag(account, spec["tag"], timeout_s=5)
    if op == "status":
        return client.status(account, spec["order_id"], timeout_s=5)
    return client.history(account, spec["order_id"], timeout_s=5)


MARKET_OPS = {"quote", "instruments"}
"""Calls of the market-data adapter (``KiteMarketData``), not of the order client."""


def market_call(fixture: Mapping[str, Any], url: str) -> Any:
    """Make a market-data call; return what it read, or ``{"unavailable": reason}``."""
    raw = fixture["account"]
    source = KiteMarketData(
        api_key=raw["api_key"], access_token=lambda: str(raw["access_token"]), base_url=url
    )
    spec = fixture["call"]
    try:
        if spec["op"] == "instruments":
            rows = list(source.instrument_rows(Exchange(spec["exchange"])))
            listings = [listing_of(row) for row in rows]
            return {
                "rows": len(rows),
                "listed": [x.symbol for x in listings if x is not None],
                "tick_sizes": sorted({str(x.tick_size) for x in listings if x is not None}),
            }
        keys = [(Exchange(e), s) for e, _, s in (i.partition(":") for i in spec["instruments"])]
        return {
            f"{e.value}:{s}": {
                "last_price": str(q.last_price),
                "bid": None if q.bid is None else str(q.bid),
                "ask": None if q.ask is None else str(q.ask),
                "volume": q.volume,
                "lower_circuit": str(q.lower_circuit),
                "upper_circuit": str(q.upper_circuit),
                "depth": q.depth,
                "exchange_time": q.exchange_time.isoformat(),
            }
            for (e, s), q in source.quotes(keys).items()
        }
    except MarketDataUnavailableError as exc:
        return {"unavailable": str(exc)}


def same(recorded: Any, sent: Any) -> bool:
    """Equal, numbers compared as numbers (``"5"`` and ``5``, ``0`` and ``0.0``)."""
    if isinstance(recorded, bool) or isinstance(sent, bool):
        return bool(recorded == sent)
    try:
        return bool(Decimal(str(recorded)) == Decimal(str(sent)))
    except InvalidOperation:
        return bool(recorded == sent)


def check_body(expected: Mapping[str, Any], sent: Mapping[str, Any]) -> None:
    deviations = expected.get("deviations", {})
    recorded = expected.get("form") or expected.get("json") or {}
    for key, value in recorded.items():
        want = deviations.get(key, value)
        if value in ("", None) and key not in sent:
            continue
        if value == "" and same(0, sent.get(key)):
            continue
        assert key in sent, f"{key} not sent"
        assert same(want, sent[key]), f"{key}: sent {sent[key]!r}, recorded {value!r}"
    extra = set(sent) - set(recorded) - set(expected.get("allowed_extra", []))
    assert not extra, f"sent fields the contract does not have: {sorted(extra)}"


def check_request(expected: Mapping[str, Any], got: Mapping[str, Any], prefix: str) -> None:
    assert got["method"] == expected["method"]
    assert got["path"] == prefix + expected["path"]
    for key, value in expected.get("query", {}).items():
        assert got["query"].get(key) == value
    headers = {k.lower(): v for k, v in got["headers"].items()}
    for name, value in expected.get("headers", {}).items():
        assert headers.get(name.lower(), "").startswith(value), f"header {name}"
    if "form" in expected:
        check_body(expected, dict(parse_qsl(got["body"].decode(), keep_blank_values=True)))
    elif "json" in expected:
        check_body(expected, json.loads(got["body"]))


def check_expectation(expect: Mapping[str, Any], result: Any) -> None:
    if "returns" in expect:
        assert result == expect["returns"]
    if "state" in expect:
        for key, value in expect["state"].items():
            assert (
                same(value, getattr(result, key))
                if key == "average_price"
                else (str(getattr(result, key)) == str(value))
            ), key
    if "states" in expect:
        assert len(result) == len(expect["states"])
        for state, wanted in zip(result, expect["states"], strict=True):
            for key, value in wanted.items():
                assert str(getattr(state, key)) == str(value), key


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_adapter_honours_the_recorded_contract(
    path: Path, replay: tuple[Replay, RunningServer]
) -> None:
    # GIVEN a recorded exchange with the broker, played back on loopback
    fixture = json.loads(path.read_text())
    assert fixture["source"], "every fixture names its source"
    state, server = replay
    state.exchanges = list(fixture["exchanges"])
    state.received = []
    broker = path.parent.name
    prefix = "/v2" if broker == "dhan" else ""
    client = client_for(broker, fixture, server.url + prefix)
    expect = fixture["expect"]
    # WHEN the adapter makes the call
    if fixture["call"]["op"] in MARKET_OPS:
        result: Any = market_call(fixture, server.url + prefix)
    elif "error" in expect:
        with pytest.raises(BrokerCallError) as caught:
            call(client, account_of(fixture), fixture["call"])
        result = caught.value
    else:
        result = call(client, account_of(fixture), fixture["call"])
    # THEN it sent what the broker documents, and read the answer as the broker means it
    assert len(state.received) == len(fixture["exchanges"])
    for exchange, got in zip(fixture["exchanges"], state.received, strict=True):
        check_request(exchange["request"], got, prefix)
    if "unavailable" in expect:
        assert result == {"unavailable": expect["unavailable"]}
    elif "error" in expect:
        assert result.kind.value == expect["error"]
        if "message" in expect:
            assert result.message == expect["message"]
    else:
        check_expectation(expect, result)


def test_every_broker_has_contracts() -> None:
    assert {p.parent.name for p in FIXTURES} == {"kite", "upstox", "dhan"}
