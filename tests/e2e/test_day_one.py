"""Day one: ``order-router run --no-seed`` on an empty data dir routes its first order.

No paper brokers, no profiles, no seeded instruments: the three simulated brokers are registered
and linked, the instrument master is loaded from the Kite simulator, and the first order of a
symbol nobody has a profile for routes on the day-one priors over the simulator's quote
(docs/routing-engine.md, "Day one"). Then the simulators' fills teach the profiles.
"""

from __future__ import annotations

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
SIM_BROKERS = {"dhan-sim", "kite-sim", "upstox-sim"}
SETTLE_WITHIN_S = 30.0
LOW_CONFIDENCE = 0.2
"""A decision on priors alone counts about one observation per factor: far below this."""


@pytest.fixture(scope="module")
def bare_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """``run --no-seed`` on an empty data dir."""
    run = start_runtime(Path(tmp_path_factory.mktemp("order-router-day-one")), "--no-seed")
    try:
        yield run
    finally:
        stop_runtime(run)


def _db(run: Runtime) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{run.pg_port}/{DATABASE}", autocommit=True
    )


def _order(run: Runtime, path: str, symbol: str, quantity: int) -> httpx.Response:
    return httpx.post(
        f"{run.api}{API}/orders/{path}",
        json={"symbol": symbol, "side": "BUY", "quantity": quantity, "orderType": "MARKET"},
        headers=run.auth(LOCAL_TRADER),
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
        time.sleep(0.3)
    pytest.fail(f"children not filled within {SETTLE_WITHIN_S} s: {body}")


def test_no_seed_starts_without_profiles_or_paper_brokers(bare_runtime: Runtime) -> None:
    # GIVEN a run started with --no-seed on an empty data dir
    # WHEN its database is read
    with _db(bare_runtime) as conn:
        profiles = conn.execute("SELECT count(*) FROM broker_execution_profiles").fetchone()
        brokers = conn.execute("SELECT broker_id FROM brokers ORDER BY broker_id").fetchall()
        listed = conn.execute("SELECT count(*) FROM instruments").fetchone()
    # THEN no profile exists, only the simulated brokers are registered, and the instrument
    # master came from the Kite simulator
    assert profiles == (0,)
    assert {b for (b,) in brokers} == SIM_BROKERS
    assert listed is not None
    assert listed[0] > 0
    assert "Not seeded" in bare_runtime.output()


def test_the_first_order_routes_on_priors_and_learning_takes_over(bare_runtime: Runtime) -> None:
    # GIVEN no broker has a profile for TCS
    # WHEN the first TCS order is submitted through the HTTP API
    response = _order(bare_runtime, "smart", "TCS", 50)
    # THEN it is routed (never NO_ELIGIBLE_BROKER) on low-confidence day-one priors
    assert response.status_code == 200, response.text
    first = response.json()
    assert first["status"] == "ROUTED", first
    assert {a["brokerId"] for a in first["allocations"]} <= SIM_BROKERS
    assert first["confidenceScore"] < LOW_CONFIDENCE, first["confidenceScore"]
    scored = {s["brokerId"] for s in first["brokerScores"] if s["exclusionReason"] is None}
    assert scored == SIM_BROKERS
    # AND the simulators' fills create and teach the profiles of the brokers that filled
    view = _settled(bare_runtime, first["orderId"])
    filled_by = {c["brokerId"] for c in view["childOrders"]}
    with _db(bare_runtime) as conn:
        rows = conn.execute(
            "SELECT broker_id, sample_count FROM broker_execution_profiles WHERE symbol = 'TCS'"
        ).fetchall()
    learned = {broker for broker, samples in rows if samples > 0}
    assert filled_by <= learned, rows
    # AND the next decision counts that evidence: more confident than the first
    second = _order(bare_runtime, "analyze", "TCS", 50)
    assert second.status_code == 200, second.text
    assert second.json()["confidenceScore"] > first["confidenceScore"]
    # AND a larger order routes too, on the learned rows priced from the simulator's quote
    third = _order(bare_runtime, "smart", "TCS", 500)
    assert third.status_code == 200, third.text
    assert third.json()["status"] == "ROUTED", third.json()


def test_a_symbol_without_market_data_stays_unknown(bare_runtime: Runtime) -> None:
    # GIVEN a symbol the simulators do not list (no instrument, no quote)
    # WHEN it is ordered
    response = _order(bare_runtime, "analyze", "NOSUCHSYM", 10)
    # THEN it is refused with a 4xx, never routed on priors without market data
    assert 400 <= response.status_code < 500, response.text


def test_a_symbol_only_one_simulator_can_be_sent_routes_to_that_one(bare_runtime: Runtime) -> None:
    # GIVEN ITC: listed by the Kite simulator (instrument, quote), absent from the Upstox and
    # Dhan simulated brokers' instrument maps
    # WHEN it is ordered for the first time
    response = _order(bare_runtime, "analyze", "ITC", 100)
    # THEN it routes on priors to kite-sim, the only broker that can be sent it
    assert response.status_code == 200, response.text
    body = response.json()
    assert {s["brokerId"] for s in body["brokerScores"]} == {"kite-sim"}
    assert [a["brokerId"] for a in body["allocations"]] == ["kite-sim"]
