"""The whole loop on one machine: order, routing, fills, live updates, webhooks, analytics.

A client's view only: real HTTP (httpx) and WebSocket (websockets) clients against
``order-router run``; nothing in-process but token minting and webhook signing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from local import seed
from local.brokers import BROKER_IDS as SIMULATED_BROKERS
from local.cli import market_status
from local.services import free_port
from shared.adapters.brokers.webhooks import sign_webhook
from shared.domain.contracts import ApiPath, MessageType
from tests.e2e.support import API, Runtime, cli, start_runtime, stop_runtime

UPDATE_WITHIN_S = 5.0
ORDER = {
    "symbol": "RELIANCE",
    "side": "BUY",
    "quantity": 100,
    "orderType": "MARKET",
    "routingObjective": "SMART_BALANCE",
}
TERMINAL = {"FILLED", "CANCELLED", "REJECTED", "TIMED_OUT"}


def user() -> str:
    """A trader of this test alone, so tests never see each other's orders or updates."""
    return f"trader-{uuid.uuid4().hex[:8]}"


def submit(runtime: Runtime, trader: str, **changes: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{runtime.api}{API}/orders/smart",
        json={**ORDER, **changes},
        headers=runtime.auth(trader),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def eventually(check: Callable[[], Any], *, within_s: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        outcome = check()
        if outcome:
            return outcome
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {within_s} s (last: {outcome!r})")
        time.sleep(0.1)


def settled_order(runtime: Runtime, trader: str, order_id: str) -> dict[str, Any]:
    """The order view once every child has a terminal status (its fills were tracked)."""

    def view() -> dict[str, Any] | None:
        response = httpx.get(f"{runtime.api}{API}/orders/{order_id}", headers=runtime.auth(trader))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        children = body["childOrders"]
        done = children and all(c["status"] in TERMINAL for c in children)
        return body if done else None

    settled: dict[str, Any] = eventually(view, within_s=UPDATE_WITHIN_S, what="settled children")
    return settled


def profile(runtime: Runtime, trader: str, broker_id: str, symbol: str) -> dict[str, Any]:
    response = httpx.get(
        f"{runtime.api}{API}/brokers/profiles",
        params={"symbol": symbol},
        headers=runtime.auth(trader),
    )
    assert response.status_code == 200, response.text
    [match] = [p for p in response.json() if p["brokerId"] == broker_id]
    found: dict[str, Any] = match
    return found


async def messages_until(
    ws: ClientConnection, done: Callable[[list[dict[str, Any]]], bool], within_s: float
) -> list[dict[str, Any]]:
    """Messages received until ``done`` holds, or until ``within_s`` passes."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    while not done(received):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            raw = await asyncio.wait_for(ws.recv(), remaining)
        except TimeoutError:
            break
        received.append(json.loads(raw))
    return received


# -- the API front door ------------------------------------------------------------------------


def test_health_needs_no_token(runtime: Runtime) -> None:
    # GIVEN the running service; WHEN the health route is called without a token
    response = httpx.get(f"{runtime.api}{ApiPath.HEALTH}")
    # THEN both data services are up
    assert response.status_code == 200
    assert response.json()["dependencies"] == {"postgres": "up", "redis": "up"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
    ids=["missing", "malformed", "unsigned"],
)
def test_trader_routes_without_a_valid_token_are_401(
    runtime: Runtime, authorization: str | None
) -> None:
    # GIVEN a request without a valid bearer token
    headers = {"Authorization": authorization} if authorization else {}
    # WHEN it asks for a trader route
    response = httpx.post(f"{runtime.api}{API}/orders/smart", json=ORDER, headers=headers)
    # THEN the authorizer refuses it as API Gateway does, in the service's one error shape
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_a_token_of_another_issuer_secret_is_401(runtime: Runtime) -> None:
    # GIVEN a well-formed token signed with a secret that is not the run's
    from local.tokens import issue_local_token

    forged = issue_local_token(
        "x" * 64, user_id="mallory", issuer="urn:order-router:local-issuer", audience="order-router"
    )
    # WHEN it is presented
    response = httpx.get(
        f"{runtime.api}{API}/analytics/execution", headers={"Authorization": f"Bearer {forged}"}
    )
    # THEN 401
    assert response.status_code == 401


def test_a_verified_caller_outside_the_trader_group_gets_403_from_the_function(
    runtime: Runtime,
) -> None:
    # GIVEN a valid token without the TRADER group (the authorizer checks no groups)
    token = runtime.token("viewer-1", groups=("VIEWER",))
    # WHEN it calls a trader route
    response = httpx.get(
        f"{runtime.api}{API}/analytics/execution", headers={"Authorization": f"Bearer {token}"}
    )
    # THEN the function itself refuses it
    assert response.status_code == 403


def test_a_body_that_breaks_the_schema_is_422_naming_the_field(runtime: Runtime) -> None:
    # GIVEN an order with a negative quantity
    body = {**ORDER, "quantity": -5}
    # WHEN it is submitted
    response = httpx.post(
        f"{runtime.api}{API}/orders/smart", json=body, headers=runtime.auth(user())
    )
    # THEN it is refused and the field is named
    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert "quantity" in fields


def test_unknown_paths_are_404(runtime: Runtime) -> None:
    # GIVEN a path no API route serves; WHEN it is called
    response = httpx.get(f"{runtime.api}/api/v2/nothing")
    # THEN 404 in the one error shape
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


# -- the loop ----------------------------------------------------------------------------------


async def test_a_smart_order_is_routed_and_only_its_owner_hears_about_it(
    runtime: Runtime,
) -> None:
    # GIVEN the owner and another trader, each with an open socket
    owner, other = user(), user()
    async with (
        connect(f"{runtime.ws}/?token={runtime.token(owner)}") as owner_ws,
        connect(f"{runtime.ws}/?token={runtime.token(other)}") as other_ws,
    ):
        # WHEN the owner submits a smart order
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{runtime.api}{API}/orders/smart",
                json=ORDER,
                headers=runtime.auth(owner),
                timeout=30,
            )
        # THEN it is routed with planned allocations summing to the order (a cascade, e.g. a
        # partial fill's remainder, is listed as one more allocation naming where it came from)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["allocations"]
        planned = [a for a in result["allocations"] if a.get("cascadedFrom") is None]
        assert sum(a["quantity"] for a in planned) == ORDER["quantity"]
        order_id = result["orderId"]

        # AND within 5 s the owner's socket gets a routing and an execution update for it
        def both(received: list[dict[str, Any]]) -> bool:
            kinds = {m["type"] for m in received if m["data"].get("orderId") == order_id}
            return {MessageType.ROUTING_UPDATE, MessageType.EXECUTION_UPDATE} <= kinds

        owner_messages = await messages_until(owner_ws, both, UPDATE_WITHIN_S)
        assert both(owner_messages), owner_messages
        # AND the other trader's socket got nothing
        other_messages = await messages_until(other_ws, bool, 0.5)
        assert other_messages == []


async def test_websocket_without_a_valid_token_is_refused_with_401(runtime: Runtime) -> None:
    # GIVEN no token; WHEN a socket is opened
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{runtime.ws}/"):
            pass
    # THEN the handshake is refused with $connect's status
    assert refused.value.response.status_code == 401


async def test_websocket_messages_reach_the_handler_and_replies_come_back(
    runtime: Runtime,
) -> None:
    # GIVEN an open socket
    async with connect(f"{runtime.ws}/?token={runtime.token(user())}") as ws:
        # WHEN the client pings and subscribes
        await ws.send(json.dumps({"action": "ping"}))
        pong = json.loads(await asyncio.wait_for(ws.recv(), UPDATE_WITHIN_S))
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["RELIANCE"]}))
        subscribed = json.loads(await asyncio.wait_for(ws.recv(), UPDATE_WITHIN_S))
    # THEN the handler's replies arrive through the management API
    assert pong["type"] == MessageType.PONG
    assert subscribed == {**subscribed, "type": MessageType.SUBSCRIBED}
    assert subscribed["data"]["symbols"] == ["RELIANCE"]


async def test_the_management_api_answers_boto3(runtime: Runtime) -> None:
    # GIVEN an open socket of a trader, and a boto3 client with the run's internal keys
    trader = user()
    keys = runtime.internal_credentials()
    client = boto3.session.Session().client(
        "apigatewaymanagementapi",
        endpoint_url=runtime.internal,
        region_name="ap-south-1",
        aws_access_key_id=keys["accessKeyId"],
        aws_secret_access_key=keys["secretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )
    async with connect(f"{runtime.ws}/?token={runtime.token(trader)}") as ws:
        # (a client never learns its connection id; the registry in Redis knows it)
        [connection_id] = runtime.connections_of(trader)
        # WHEN the client reads, posts to and deletes the connection
        info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
        await asyncio.to_thread(
            client.post_to_connection, ConnectionId=connection_id, Data=b'{"hello":1}'
        )
        posted = json.loads(await asyncio.wait_for(ws.recv(), UPDATE_WITHIN_S))
        await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), UPDATE_WITHIN_S)
    # THEN GET describes the socket, POST reached it, DELETE closed it and later posts are Gone
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    assert posted == {"hello": 1}
    with pytest.raises(ClientError) as gone:
        client.post_to_connection(ConnectionId=connection_id, Data=b"{}")
    assert gone.value.response["Error"]["Code"] == "GoneException"
    # AND the socket's $disconnect removed it from the registry
    eventually(
        lambda: runtime.connections_of(trader) == [],
        within_s=UPDATE_WITHIN_S,
        what="the $disconnect",
    )


def test_a_signed_report_filling_a_cancelled_child_is_quarantined(runtime: Runtime) -> None:
    # GIVEN an order whose children were partially filled by the paper brokers, then cancelled
    trader = user()
    result = submit(runtime, trader, symbol="TCS", quantity=40)
    view = settled_order(runtime, trader, result["orderId"])
    child = next(c for c in view["childOrders"] if 0 < c["filledQuantity"] < c["quantity"])
    before = profile(runtime, trader, child["brokerId"], "TCS")["sampleCount"]
    # WHEN a signed webhook reports the rest of that cancelled child filled
    raw = json.dumps(
        {
            "brokerId": child["brokerId"],
            "brokerOrderId": child["brokerOrderId"],
            "childOrderId": child["childOrderId"],
            "status": "FILLED",
            "quantity": child["quantity"],
            "filledQuantity": child["quantity"],
            "averagePrice": f"{float(child['averagePrice']):.2f}",
            "symbol": "TCS",
            "exchange": "NSE",
            "side": "BUY",
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()
    secret = seed.webhook_secrets()[f"{child['brokerId']}/webhook"]
    response = httpx.post(
        f"{runtime.api}{ApiPath.SIGNED_WEBHOOK.format(brokerId=child['brokerId'])}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            **sign_webhook(raw, secret, timestamp=int(time.time())),
        },
    )
    # THEN it is authentic but impossible (a cancelled child takes no further fill): 202
    # quarantined with its reason, so the broker stops retrying; the child and the broker's
    # profile are unchanged (docs/execution-tracking.md, "Validation and quarantine")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "quarantined"
    assert response.json()["quarantine"]["reason"] == "FILL_AFTER_CLOSE"
    after = settled_order(runtime, trader, result["orderId"])
    [same] = [c for c in after["childOrders"] if c["childOrderId"] == child["childOrderId"]]
    assert (same["status"], same["filledQuantity"]) == (child["status"], child["filledQuantity"])
    assert profile(runtime, trader, child["brokerId"], "TCS")["sampleCount"] == before


def test_an_unsigned_webhook_is_401(runtime: Runtime) -> None:
    # GIVEN a report without a signature; WHEN it is posted
    response = httpx.post(
        f"{runtime.api}{ApiPath.SIGNED_WEBHOOK.format(brokerId='zerodha')}", json={"a": 1}
    )
    # THEN the function refuses it
    assert response.status_code == 401


def test_analytics_reflect_the_fills(runtime: Runtime) -> None:
    # GIVEN a trader's two orders, filled (partly) by the paper brokers
    trader = user()
    filled = 0
    for symbol in ("INFY", "SBIN"):
        order = submit(runtime, trader, symbol=symbol, quantity=50)
        view = settled_order(runtime, trader, order["orderId"])
        filled += sum(c["filledQuantity"] for c in view["childOrders"])
    # WHEN the trader asks for execution analytics
    response = httpx.get(f"{runtime.api}{API}/analytics/execution", headers=runtime.auth(trader))
    # THEN they count those orders and fills
    assert response.status_code == 200, response.text
    summary = response.json()["summary"]
    assert summary["orders"] == 2
    assert summary["filledQuantity"] == filled > 0
    assert summary["orderedQuantity"] == 100


# -- the command line --------------------------------------------------------------------------


def test_the_token_command_prints_a_token_the_api_accepts(runtime: Runtime) -> None:
    # GIVEN the run's data directory; WHEN a token is asked for
    printed = cli("token", "--user", "trader-cli", f"--data-dir={runtime.data_dir}")
    # THEN it works against the API
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    response = httpx.get(
        f"{runtime.api}{API}/brokers/profiles",
        params={"symbol": "RELIANCE"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    # The paper brokers and the simulated real ones (RELIANCE is among the simulators' symbols)
    assert len(response.json()) == len(seed.BROKERS) + len(SIMULATED_BROKERS)


def test_run_prints_a_curl_that_names_the_api_and_a_token(runtime: Runtime) -> None:
    # GIVEN the run's banner; WHEN its curl line is read
    [curl] = [line for line in runtime.output().splitlines() if line.startswith("curl ")]
    # THEN it posts the example order to this API with a bearer token
    assert f"{runtime.api}{API}/orders/smart" in curl
    assert "Authorization: Bearer ey" in curl
    assert '"symbol":"RELIANCE"' in curl


def test_run_says_the_market_hours_are_not_enforced_when_told_so(runtime: Runtime) -> None:
    # GIVEN the suite's run, started with --ignore-market-hours; WHEN its banner is read
    [market] = [line for line in runtime.output().splitlines() if line.startswith("  Market")]
    # THEN it warns that orders route at any hour
    assert "NOT enforced" in market


def test_the_banner_says_when_the_market_is_closed_and_how_to_route_anyway() -> None:
    # GIVEN a Saturday and a Tuesday at 10:00 IST (04:30 UTC)
    saturday = datetime(2026, 12, 5, 4, 30, tzinfo=UTC)
    tuesday = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
    # WHEN the run's market line is written for each, with the hours enforced
    closed, open_ = market_status(True, saturday), market_status(True, tuesday)
    # THEN the Saturday names the weekend, the rule and the way out; the Tuesday routes
    assert "weekend" in closed
    assert "MARKET_HOURS" in closed
    assert "--ignore-market-hours" in closed
    assert open_ == "NSE is open now: orders route"


def test_a_traders_kill_switch_from_the_cli_refuses_the_next_order_until_released(
    runtime: Runtime,
) -> None:
    # GIVEN a trader whose kill switch is engaged with the CLI
    trader = f"trader-{uuid.uuid4().hex[:6]}"
    port = f"--pg-port={runtime.pg_port}"
    engaged = cli("kill-switch", "engage", f"--user={trader}", "--reason=margin call", port)
    assert engaged.returncode == 0, engaged.stderr
    assert f"kill switch (trader {trader}) ENGAGED" in engaged.stdout
    # WHEN the trader sends an order
    refused = httpx.post(
        f"{runtime.api}{API}/orders/smart", json=ORDER, headers=runtime.auth(trader), timeout=30
    )
    # THEN it is refused with the switch's reason; after release the next order routes
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["rule"]) == ("RISK_REJECTED", "KILL_SWITCH")
    assert "margin call" in error["message"]
    released = cli("kill-switch", "release", f"--user={trader}", "--reason=paid", port)
    assert released.returncode == 0, released.stderr
    assert submit(runtime, trader)["status"] in {"ROUTED", "PARTIALLY_ROUTED"}


def test_the_kill_switch_command_says_when_no_run_answers(tmp_path: Any) -> None:
    outcome = cli("kill-switch", "engage", "--reason=x", f"--pg-port={free_port()}", timeout=60)
    assert outcome.returncode == 1
    assert "is `order-router run` running?" in outcome.stderr


def test_run_refuses_a_busy_port_in_one_line(tmp_path: Any) -> None:
    # GIVEN a port something listens on
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # WHEN run is asked to use it
        outcome = cli("run", f"--http-port={port}", f"--data-dir={tmp_path}", timeout=30)
    # THEN it stops at once with one line naming the port
    assert outcome.returncode == 2
    lines = (outcome.stdout + outcome.stderr).strip().splitlines()
    assert len(lines) == 1
    assert f"port {port}" in lines[0]
    assert "busy" in lines[0]


def test_data_and_tokens_survive_a_restart(tmp_path: Any) -> None:
    # GIVEN a run that took an order and was stopped with Ctrl-C
    data_dir = tmp_path / "kept"
    first = start_runtime(data_dir)
    try:
        token = first.token("trader-restart")
        submit(first, "trader-restart")
    finally:
        stop_runtime(first)
    # WHEN the service starts again on the same data directory (other ports)
    second = start_runtime(data_dir)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        analytics = httpx.get(f"{second.api}{API}/analytics/execution", headers=headers)
        again = httpx.post(
            f"{second.api}{API}/orders/smart", json=ORDER, headers=headers, timeout=30
        )
    finally:
        stop_runtime(second)
    # THEN the old token still works, the first order is still there, and new orders route
    assert "migrations applied: none" in second.output()
    assert analytics.status_code == 200
    assert analytics.json()["summary"]["orders"] == 1
    assert again.status_code == 200, again.text


def test_run_loads_the_instrument_master_from_its_kite_simulator(runtime: Runtime) -> None:
    # GIVEN the suite's run; WHEN its banner's quotes line is read
    [quotes] = [line for line in runtime.output().splitlines() if line.startswith("  Quotes")]
    # THEN market data comes from the Kite simulator, whose dump was loaded at start
    assert "Kite simulator" in quotes
    assert f"{len(seed.SYMBOLS) * 2} listed" in quotes
    assert "0 bad rows, 0 without band" in quotes
