"""POST /api/v1/admin/market/refresh through functions/admin, against the Kite simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.admin import handler as admin
from local import seed
from local.simulators import RunningSimulator, start_simulator
from shared.domain.contracts import ApiPath
from shared.settings import Settings
from shared.wiring import Wiring
from tests.handlers.support import ADMIN, TRADER, call, handler_settings

KEY = "platform-key"
TOKEN = "platform-token"
REFRESH = str(ApiPath.ADMIN_MARKET_REFRESH)


@pytest.fixture
def kite() -> Iterator[RunningSimulator]:
    running = start_simulator("kite", api_key=KEY, access_token=TOKEN)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def app_settings(settings: Settings, kite: RunningSimulator) -> Settings:
    return handler_settings(
        settings,
        market_data_source="kite",
        market_data_base_url=kite.url,
        market_data_api_key=KEY,
        broker_secrets_json=json.dumps(seed.webhook_secrets() | {"market-data/kite": TOKEN}),
    )


def refresh(body: Any, claims: dict[str, Any] | None = ADMIN) -> tuple[int, Any]:
    status, answer, _ = call(admin, "POST", REFRESH, body=body, claims=claims)
    return status, answer


def test_an_admin_loads_the_instrument_master_on_demand(wiring: Wiring) -> None:
    # GIVEN an empty instrument master
    with wiring.database.connection() as conn:
        conn.execute("DELETE FROM instruments")
    # WHEN an admin asks for the instruments job
    status, answer = refresh({"job": "instruments"})
    # THEN every listing is written and the counts come back
    assert status == 200, answer
    assert answer["job"] == "instruments"
    assert answer["written"] == answer["listed"] == len(seed.SYMBOLS) * 2
    assert (answer["badRows"], answer["noBand"]) == (0, 0)


def test_an_admin_refreshes_the_statistics_on_demand(wiring: Wiring) -> None:
    status, answer = refresh({"job": "statistics"})
    assert status == 200, answer
    assert answer["refreshed"] == answer["symbols"] == len(seed.SYMBOLS)


def test_market_data_down_is_a_503_with_its_reason(wiring: Wiring, kite: RunningSimulator) -> None:
    # GIVEN the market-data source down WHEN the load is asked for
    kite.stop()
    status, answer, headers = call(
        admin, "POST", REFRESH, body={"job": "instruments"}, claims=ADMIN
    )
    # THEN a 503 in the one error shape names the cause, with Retry-After
    assert status == 503, answer
    assert answer["error"]["code"] == "MARKET_DATA_UNAVAILABLE"
    assert "could not connect" in answer["error"]["message"]
    assert headers.get("Retry-After") == "5"


@pytest.mark.parametrize("body", [{}, {"job": "everything"}, {"job": "instruments", "x": 1}])
def test_a_bad_job_is_a_422(wiring: Wiring, body: dict[str, Any]) -> None:
    status, answer = refresh(body)
    assert status == 422, answer


def test_a_trader_may_not_refresh(wiring: Wiring, kite: RunningSimulator) -> None:
    status, answer = refresh({"job": "instruments"}, claims=TRADER)
    assert status == 403, answer
    assert not any(path.startswith("/instruments") for _, path, _, _ in kite.sim.requests)
