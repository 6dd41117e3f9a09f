"""The admin API and the WebSocket routing status in local mode, as a client sees them.

Real HTTP and WebSocket clients against ``order-router run``; the operator's token comes from
``order-router token --group ADMIN``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from shared.domain.contracts import ADMIN_PREFIX, MessageType
from tests.e2e.support import API, Runtime, cli

WITHIN_S = 5.0
ORDER = {
    "symbol": "RELIANCE",
    "side": "BUY",
    "quantity": 100,
    "orderType": "MARKET",
    "routingObjective": "SMART_BALANCE",
}


def admin_token(runtime: Runtime) -> str:
    printed = cli("token", "--group", "ADMIN", f"--data-dir={runtime.data_dir}")
    assert printed.returncode == 0, printed.stderr
    return printed.stdout.strip()


def set_status(runtime: Runtime, token: str, broker_id: str, status: str) -> httpx.Response:
    return httpx.put(
        f"{runtime.api}{ADMIN_PREFIX}/brokers/{broker_id}/status",
        json={"status": status, "reason": f"e2e {status.lower()}"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


async def next_of(ws: Any, kind: str) -> dict[str, Any]:
    """The next message of type ``kind`` (others are skipped), within ``WITHIN_S``."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WITHIN_S))
        if message["type"] == kind:
            return message


def test_the_admin_routes_need_an_admin_token(runtime: Runtime) -> None:
    # GIVEN an ADMIN token from the CLI, a TRADER token and none
    token = admin_token(runtime)
    url = f"{runtime.api}{ADMIN_PREFIX}/brokers"
    # WHEN each lists the brokers
    ok = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    trader = httpx.get(url, headers=runtime.auth("trader-e2e-admin"))
    nobody = httpx.get(url)
    # THEN only the operator gets them; the others 403 and 401 in the one error shape
    assert ok.status_code == 200, ok.text
    assert {b["broker"]["brokerId"] for b in ok.json()["brokers"]} >= {"zerodha", "upstox"}
    assert (trader.status_code, trader.json()["error"]["code"]) == (403, "FORBIDDEN")
    assert nobody.status_code == 401
    assert "error" in nobody.json()


async def test_maintenance_is_pushed_and_the_next_order_avoids_the_broker(
    runtime: Runtime,
) -> None:
    # GIVEN an operator and a trader whose socket asked for the routing status
    token = admin_token(runtime)
    trader = f"trader-{uuid.uuid4().hex[:8]}"
    async with connect(f"{runtime.ws}/?token={runtime.token(trader)}") as ws:
        await ws.send(json.dumps({"action": "status"}))
        status = await next_of(ws, MessageType.ROUTING_STATUS)
        states = {b["brokerId"]: b["status"] for b in status["data"]["brokers"]}
        assert states["zerodha"] == "ACTIVE"
        assert status["data"]["openOrders"] == []
        try:
            # WHEN the operator puts zerodha in MAINTENANCE
            changed = await asyncio.to_thread(set_status, runtime, token, "zerodha", "MAINTENANCE")
            assert changed.status_code == 200, changed.text
            # THEN the trader's socket hears it
            pushed = await next_of(ws, MessageType.BROKER_STATUS)
            assert (pushed["data"]["brokerId"], pushed["data"]["status"]) == (
                "zerodha",
                "MAINTENANCE",
            )
            # AND the next order gives zerodha nothing, with MAINTENANCE as its reason
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    f"{runtime.api}{API}/orders/smart",
                    json=ORDER,
                    headers=runtime.auth(trader),
                    timeout=30,
                )
            assert answer.status_code == 200, answer.text
            routed = answer.json()
            assert "zerodha" not in {a["brokerId"] for a in routed["allocations"]}
            [score] = [s for s in routed["brokerScores"] if s["brokerId"] == "zerodha"]
            assert "MAINTENANCE" in score["exclusionReason"]
        finally:
            restored = await asyncio.to_thread(set_status, runtime, token, "zerodha", "ACTIVE")
            assert restored.status_code == 200, restored.text
    # AND the audit trail holds both changes, newest first
    async with httpx.AsyncClient() as client:
        audit = await client.get(
            f"{runtime.api}{ADMIN_PREFIX}/audit",
            params={"brokerId": "zerodha", "limit": "2"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert audit.status_code == 200, audit.text
    assert [e["newStatus"] for e in audit.json()["entries"]] == ["ACTIVE", "MAINTENANCE"]


async def test_an_operator_socket_gets_broker_status_and_never_a_traders_order(
    runtime: Runtime,
) -> None:
    # GIVEN an operator's socket (ADMIN only) and a trader's, both past the status reply
    token = admin_token(runtime)
    trader = f"trader-{uuid.uuid4().hex[:8]}"
    async with (
        connect(f"{runtime.ws}/?token={token}") as operator,
        connect(f"{runtime.ws}/?token={runtime.token(trader)}") as ws,
    ):
        await operator.send(json.dumps({"action": "status"}))
        status = await next_of(operator, MessageType.ROUTING_STATUS)
        assert {b["brokerId"] for b in status["data"]["brokers"]} >= {"zerodha", "upstox"}
        assert status["data"]["openOrders"] == []
        # WHEN the trader places an order and then the operator changes a broker's status
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{runtime.api}{API}/orders/smart",
                json=ORDER,
                headers=runtime.auth(trader),
                timeout=30,
            )
        assert answer.status_code == 200, answer.text
        await next_of(ws, MessageType.ROUTING_UPDATE)
        try:
            changed = await asyncio.to_thread(set_status, runtime, token, "upstox", "MAINTENANCE")
            assert changed.status_code == 200, changed.text
            # THEN the operator's first message after the status reply is that BROKER_STATUS:
            # no routing, execution or order update of the trader came before it
            first = json.loads(await asyncio.wait_for(operator.recv(), WITHIN_S))
            assert first["type"] == MessageType.BROKER_STATUS, first
            assert first["data"]["brokerId"] == "upstox"
        finally:
            restored = await asyncio.to_thread(set_status, runtime, token, "upstox", "ACTIVE")
            assert restored.status_code == 200, restored.text


async def test_a_token_without_trader_or_admin_is_refused_by_the_socket(runtime: Runtime) -> None:
    # GIVEN a valid token of a user in neither group WHEN it connects THEN 403 at the handshake
    from websockets.exceptions import InvalidStatus

    viewer = runtime.token("viewer-e2e", groups=("VIEWER",))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{runtime.ws}/?token={viewer}"):
            pass
    assert refused.value.response.status_code == 403


def test_local_mode_alarms_are_evaluated_from_its_own_metrics(runtime: Runtime) -> None:
    # GIVEN local mode (no CloudWatch) WHEN an operator lists the alarms
    token = admin_token(runtime)
    answer = httpx.get(
        f"{runtime.api}{ADMIN_PREFIX}/alarms",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    # THEN every alarm of the stack is there, evaluated locally; AWS-only metrics say so
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "local"
    by_name = {a["name"]: a for a in body["alarms"]}
    assert by_name["DlqDepth"]["state"] == "INSUFFICIENT_DATA"
    assert by_name["QuarantinedReports"]["state"] in {"OK", "ALARM"}
