"""Local mode's real brokers: one order split across the Kite, Upstox and Dhan simulators.

``order-router run`` starts the simulators, registers ``kite-sim``, ``upstox-sim`` and
``dhan-sim`` (the real adapters pointed at them) and links the local trader (``trader-1``)
through the real link flows. Here, a client's view: the order goes out through the real
adapters, the simulators' postbacks come back signed (Kite's checksum) or path-tokened (Upstox,
Dhan) and are verified by the webhook function, and a trader without connections is never
routed to them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from local.runtime import DATABASE
from tests.e2e.support import API, Runtime, start_runtime, stop_runtime

LOCAL_TRADER = "trader-1"
SIM_BROKERS = ("dhan-sim", "kite-sim", "upstox-sim")
SLICE = 3000
"""The most each simulated broker may take of one order here, so a large one must split."""
SETTLE_WITHIN_S = 20.0


@pytest.fixture(scope="module")
def real_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A run whose only brokers are the three simulators (paper brokers disabled)."""
    run = start_runtime(Path(tmp_path_factory.mktemp("order-router-real")))
    try:
        with psycopg.connect(_db_url(run), autocommit=True) as conn:
            conn.execute("UPDATE brokers SET enabled = false WHERE adapter = 'paper'")
            conn.execute(
                "UPDATE broker_execution_profiles SET max_order_size = %s "
                "WHERE broker_id = ANY(%s)",
                (SLICE, list(SIM_BROKERS)),
            )
        yield run
    finally:
        stop_runtime(run)


def _db_url(run: Runtime) -> str:
    return f"postgresql://postgres@127.0.0.1:{run.pg_port}/{DATABASE}"


def _order(run: Runtime, trader: str, path: str, quantity: int) -> httpx.Response:
    return httpx.post(
        f"{run.api}{API}/orders/{path}",
        json={"symbol": "RELIANCE", "side": "BUY", "quantity": quantity, "orderType": "MARKET"},
        headers=run.auth(trader),
        timeout=30,
    )


def _settled(run: Runtime, order_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE_WITHIN_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{run.api}{API}/orders/{order_id}", headers=run.auth(LOCAL_TRADER))
        assert response.status_code == 200, response.text
        body = response.json()
        children = body["childOrders"]
        if children and all(c["status"] == "FILLED" for c in children):
            return body
        time.sleep(0.2)
    pytest.fail(f"children not filled within {SETTLE_WITHIN_S} s: {json.dumps(body)[:2000]}")


def test_one_large_order_is_split_across_kite_upstox_and_dhan(real_runtime: Runtime) -> None:
    # GIVEN the local trader, linked to the three simulated brokers at start-up
    # WHEN an order larger than any one of them takes is submitted
    response = _order(real_runtime, LOCAL_TRADER, "smart", 7500)
    # THEN it is split across the three, each child placed through its real adapter
    assert response.status_code == 200, response.text
    result = response.json()
    split = {a["brokerId"]: a["quantity"] for a in result["allocations"]}
    assert set(split) == set(SIM_BROKERS), split
    assert sum(split.values()) == 7500
    assert all(a["status"] == "PLACED" for a in result["allocations"]), result["allocations"]
    # AND the simulators' postbacks, verified by the webhook function, fill every child
    view = _settled(real_runtime, result["orderId"])
    filled = {c["brokerId"]: c["filledQuantity"] for c in view["childOrders"]}
    assert filled == split
    reported = {e["brokerId"] for e in view["executions"]}
    assert reported == set(SIM_BROKERS)


def test_a_forged_kite_postback_is_refused(real_runtime: Runtime) -> None:
    # GIVEN a Kite postback whose checksum was not made with the app's secret
    body = {"order_id": "251200000001", "order_timestamp": "2026-12-01 10:00:00"}
    forged = {**body, "status": "COMPLETE", "checksum": "0" * 64}
    # WHEN it is posted to the simulated Kite broker's webhook
    response = httpx.post(
        f"{real_runtime.api}/api/v1/webhooks/brokers/kite-sim", json=forged, timeout=10
    )
    # THEN it is refused as unauthenticated
    assert response.status_code == 401, response.text


def test_a_trader_without_connections_is_never_routed_to_the_simulated_brokers(
    real_runtime: Runtime,
) -> None:
    # GIVEN a trader who linked no broker (and only the simulated brokers are enabled)
    # WHEN the trader asks for a decision
    response = _order(real_runtime, "trader-unlinked", "analyze", 100)
    # THEN no broker can take it, and each one's reason names the missing connection
    assert response.status_code == 422, response.text
    reasons = response.json()["error"]["reasons"]
    assert set(reasons) == set(SIM_BROKERS)
    assert "no kite connection" in reasons["kite-sim"]
    assert "no upstox connection" in reasons["upstox-sim"]
    assert "no dhan connection" in reasons["dhan-sim"]
