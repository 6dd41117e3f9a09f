"""The market_refresh function, and orders routed on its data (docs/market-data.md).

A deployed stage starts with an empty instrument master, so risk refuses every order with rule
INSTRUMENT until the daily load has run; here the load runs against the Kite simulator over
real HTTP, into real Postgres, and the same order is then routed on the simulator's quotes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.market_refresh import handler as market_refresh
from functions.route_order import handler as route_order
from local import seed
from local.apigw import LocalLambdaContext
from local.simulators import RunningSimulator, start_simulator
from local.simulators.kite import KiteSimulator
from shared.domain.models import Exchange
from shared.settings import Settings
from shared.wiring import Wiring
from tests.handlers.support import API, call, handler_settings

KEY = "platform-key"
TOKEN = "platform-token"
SMART = f"{API}/orders/smart"
MARKET_BUY = {"symbol": "RELIANCE", "side": "BUY", "quantity": 10, "orderType": "MARKET"}


@pytest.fixture
def kite() -> Iterator[RunningSimulator]:
    running = start_simulator("kite", api_key=KEY, access_token=TOKEN)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def app_settings(settings: Settings, kite: RunningSimulator) -> Settings:
    """Market data from the simulator on the platform's own credential."""
    return handler_settings(
        settings,
        market_data_source="kite",
        market_data_base_url=kite.url,
        market_data_api_key=KEY,
        broker_secrets_json=json.dumps(seed.webhook_secrets() | {"market-data/kite": TOKEN}),
    )


def run(job: Any) -> dict[str, Any]:
    result: dict[str, Any] = market_refresh.lambda_handler(
        {"job": job}, LocalLambdaContext("market_refresh", 300)
    )
    return result


def empty_instruments(wiring: Wiring) -> None:
    with wiring.database.connection() as conn:
        conn.execute("DELETE FROM instruments")


def test_a_fresh_stage_refuses_until_the_daily_load_then_routes_on_live_quotes(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a stage whose instrument master is empty
    empty_instruments(wiring)
    status, body, _ = call(route_order, "POST", SMART, body=MARKET_BUY)
    assert status == 422, body
    assert body["error"]["rule"] == "INSTRUMENT"
    # WHEN the daily instruments job runs
    loaded = run("instruments")
    # THEN it loads every listing with today's band, and the same order is routed
    assert loaded["ok"] is True
    assert loaded["written"] == loaded["listed"] == len(seed.SYMBOLS) * 2
    status, body, _ = call(route_order, "POST", SMART, body=MARKET_BUY)
    assert status == 200, body
    # AND the arrival quote came from the simulator (Kite was asked for RELIANCE)
    assert any(path.startswith("/quote?i=NSE%3ARELIANCE") for _, path, _, _ in kite.sim.requests)


def test_the_statistics_job_refreshes_every_routed_symbol(wiring: Wiring) -> None:
    # GIVEN the seeded profiles of every broker WHEN the statistics job runs
    refreshed = run("statistics")
    # THEN every symbol is refreshed in every broker's profile
    assert refreshed["ok"] is True
    assert refreshed["symbols"] == refreshed["refreshed"] == len(seed.SYMBOLS)
    assert refreshed["profiles"] == len(seed.SYMBOLS) * len(seed.BROKERS)
    quote = wiring.market_source.quotes([(Exchange.NSE, "TCS")])
    profiles = wiring.profile_repository.list_for_symbol("TCS")
    assert {p.order_book_depth for p in profiles} == {q.depth for q in quote.values()}


def test_a_stale_feed_routes_without_an_arrival_quote(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN a feed stuck two minutes ago
    assert isinstance(kite.sim, KiteSimulator)
    kite.sim.market.stale_by_s = 120
    # WHEN an order comes THEN it is routed (valued at the band by risk), never a 500
    status, body, _ = call(route_order, "POST", SMART, body=MARKET_BUY)
    assert status == 200, body
    # AND the statistics job leaves the profiles as they were, saying why
    refreshed = run("statistics")
    assert (refreshed["refreshed"], refreshed["stale"]) == (0, len(seed.SYMBOLS))
    assert "s old" in refreshed["reasons"][0]


def test_with_the_broker_down_the_jobs_report_it_and_orders_still_route(
    wiring: Wiring, kite: RunningSimulator
) -> None:
    # GIVEN the market-data source down
    kite.stop()
    # WHEN both jobs run and an order comes
    instruments = run("instruments")
    statistics = run("statistics")
    status, body, _ = call(route_order, "POST", SMART, body=MARKET_BUY)
    # THEN the load says why it could not run, the refresh counts every symbol unavailable,
    # and the order is routed on the stored master (no 500 anywhere)
    assert instruments["ok"] is False
    assert "could not connect" in instruments["error"]
    assert (statistics["ok"], statistics["unavailable"]) == (True, len(seed.SYMBOLS))
    assert status == 200, body


@pytest.mark.parametrize("job", [None, "everything", 7])
def test_an_unknown_job_is_refused_with_the_known_ones(wiring: Wiring, job: Any) -> None:
    result = run(job)
    assert result["ok"] is False
    assert "instruments, statistics" in result["error"]
