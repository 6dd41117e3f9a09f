"""broker_connections: the trader API of broker links, with the simulators over real HTTP.

The real handler and wiring on a real Postgres; the Kite, Upstox and Dhan simulators as the
brokers; the local key as the key-encryption key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from functions.admin import handler as admin
from functions.broker_connections import handler
from functions.route_order import handler as route_order
from local.brokers import simulated_profiles
from local.simulators.fleet import Fleet, start_fleet
from shared.adapters.crypto import LocalKeySealer
from shared.adapters.secrets import JsonSecretStore
from shared.domain.contracts import ADMIN_PREFIX
from shared.wiring import Wiring, utc_now
from tests.handlers.support import ADMIN, API, OTHER_TRADER, TRADER, call

IDS = {"kite": "kite-sim", "upstox": "upstox-sim", "dhan": "dhan-sim"}
LINKS = f"{API}/broker-connections"


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    running = start_fleet(f"http://127.0.0.1:9/hooks{time.monotonic_ns()}", broker_ids=IDS)
    yield running
    running.stop()


@pytest.fixture
def wiring_overrides(fleet: Fleet) -> dict[str, Any]:
    return {
        "secrets": JsonSecretStore(fleet.secrets_json()),
        "sealer": LocalKeySealer(bytes(range(32))),
    }


@pytest.fixture
def linked(wiring: Wiring, fleet: Fleet) -> Wiring:
    for config in fleet.configs:
        wiring.brokers.upsert(config)
    for profile in simulated_profiles(fleet, utc_now()):
        wiring.profile_repository.upsert(profile)
    return wiring


def login(broker_id: str, claims: dict[str, Any] = TRADER) -> dict[str, str]:
    """POST .../login, then the simulator's login page: the redirect's query."""
    status, body, _ = call(handler, "POST", f"{LINKS}/{broker_id}/login", claims=claims)
    assert status == 200, body
    answer = httpx.get(body["login_url"], follow_redirects=False, timeout=5)
    return dict(parse_qsl(urlsplit(answer.headers["location"]).query))


def test_a_trader_links_kite_through_the_api(linked: Wiring) -> None:
    # GIVEN the trader back from Kite's login page with a request token and our state
    query = login("kite-sim")
    # WHEN the callback is called
    status, view, _ = call(handler, "GET", f"{LINKS}/kite-sim/callback", query=query)
    # THEN the connection is LIVE and listed, and no answer carries the token
    assert status == 200, view
    assert view["status"] == "LIVE"
    assert set(view) == {"broker_id", "status", "linked_at", "expires_at", "account_hint"}
    status, listed, _ = call(handler, "GET", LINKS)
    assert status == 200
    assert [c["broker_id"] for c in listed["connections"]] == ["kite-sim"]
    token = linked.broker_links.account("trader-1", "kite-sim").access_token.get_secret_value()
    assert token not in json.dumps(listed)
    # AND another trader sees none of it
    status, theirs, _ = call(handler, "GET", LINKS, claims=OTHER_TRADER)
    assert theirs == {"connections": []}


def test_a_forged_or_replayed_state_is_a_400(linked: Wiring) -> None:
    # GIVEN a completed Kite link
    query = login("kite-sim")
    assert call(handler, "GET", f"{LINKS}/kite-sim/callback", query=query)[0] == 200
    # WHEN the same state, a forged one, or another trader's comes back
    replayed = call(handler, "GET", f"{LINKS}/kite-sim/callback", query=query)
    forged = call(handler, "GET", f"{LINKS}/kite-sim/callback", query={**query, "state": "x"})
    stolen = call(
        handler, "GET", f"{LINKS}/kite-sim/callback", query=login("kite-sim"), claims=OTHER_TRADER
    )
    # THEN each is refused naming the state
    for status, body, _ in (replayed, forged, stolen):
        assert status == 400, body
        assert body["error"]["code"] == "INVALID_LINK"
        assert body["error"]["field"] == "state"


def test_dhan_links_by_token_and_refusals_have_their_codes(linked: Wiring, fleet: Fleet) -> None:
    # GIVEN a token Dhan issued and one it did not
    good = fleet.simulators["dhan"].sim.issue_token()
    # WHEN each is PUT, and other bad calls are made
    ok = call(handler, "PUT", f"{LINKS}/dhan-sim", body={"access_token": good})
    refused = call(handler, "PUT", f"{LINKS}/dhan-sim", body={"access_token": "nope"})
    empty = call(handler, "PUT", f"{LINKS}/dhan-sim", body={"access_token": ""})
    wrong_flow = call(handler, "POST", f"{LINKS}/dhan-sim/login")
    unknown = call(handler, "DELETE", f"{LINKS}/upstox-sim")
    not_trader = call(handler, "GET", LINKS, claims={"sub": "x", "cognito:groups": ["ADMIN"]})
    bad_method = call(handler, "PATCH", f"{LINKS}/dhan-sim")
    # THEN the good token links; every other call gets its status and the one error shape
    assert ok[0] == 200, ok[1]
    assert ok[1]["status"] == "LIVE"
    assert good not in json.dumps(ok[1])
    assert (refused[0], refused[1]["error"]["code"]) == (422, "LINK_REFUSED")
    assert empty[0] == 422
    assert "nope" not in json.dumps(empty[1])
    assert (wrong_flow[0], wrong_flow[1]["error"]["code"]) == (400, "INVALID_LINK")
    assert unknown[0] == 404
    assert not_trader[0] == 403
    assert bad_method[0] == 405


def test_after_unlinking_orders_exclude_the_broker_with_the_reason(linked: Wiring) -> None:
    # GIVEN the trader linked to Kite, then unlinked
    query = login("kite-sim")
    assert call(handler, "GET", f"{LINKS}/kite-sim/callback", query=query)[0] == 200
    status, view, _ = call(handler, "DELETE", f"{LINKS}/kite-sim")
    assert status == 200
    assert view["status"] == "REVOKED"
    # WHEN the trader asks for a decision and submits an order
    order = {"symbol": "RELIANCE", "side": "BUY", "quantity": 100, "orderType": "MARKET"}
    status, analysis, _ = call(route_order, "POST", f"{API}/orders/analyze", body=order)
    status_smart, routed, _ = call(route_order, "POST", f"{API}/orders/smart", body=order)
    # THEN Kite is excluded with the reason, and nothing goes to it
    assert status == 200, analysis
    scores = {s["brokerId"]: s for s in analysis["brokerScores"]}
    assert "unlinked" in scores["kite-sim"]["exclusionReason"]
    assert status_smart == 200, routed
    assert "kite-sim" not in {a["brokerId"] for a in routed["allocations"]}


def test_refresh_answers_a_new_kite_login(linked: Wiring) -> None:
    # GIVEN a Kite connection
    query = login("kite-sim")
    assert call(handler, "GET", f"{LINKS}/kite-sim/callback", query=query)[0] == 200
    # WHEN it is refreshed
    status, body, _ = call(handler, "POST", f"{LINKS}/kite-sim/refresh")
    # THEN the trader is sent to log in again (Kite sessions cannot be renewed unattended)
    assert status == 200, body
    assert body["connection"] is None
    assert "connect/login" in body["login_url"]


def test_operators_list_every_traders_connections_without_tokens(
    linked: Wiring, fleet: Fleet
) -> None:
    # GIVEN trader-1 linked to Kite and trader-2 to Dhan
    query = login("kite-sim")
    assert call(handler, "GET", f"{LINKS}/kite-sim/callback", query=query)[0] == 200
    token = fleet.simulators["dhan"].sim.issue_token()
    body = {"access_token": token}
    assert call(handler, "PUT", f"{LINKS}/dhan-sim", body=body, claims=OTHER_TRADER)[0] == 200
    # WHEN an operator lists connections, all and of one broker, and a trader tries to
    every = call(admin, "GET", f"{ADMIN_PREFIX}/connections", claims=ADMIN)
    dhan = call(
        admin, "GET", f"{ADMIN_PREFIX}/connections", claims=ADMIN, query={"brokerId": "dhan-sim"}
    )
    refused = call(admin, "GET", f"{ADMIN_PREFIX}/connections", claims=TRADER)
    # THEN the operator sees whose connection each is, never a token; a trader is refused
    assert every[0] == 200, every[1]
    owners = {(c["user_id"], c["broker_id"]) for c in every[1]["connections"]}
    assert owners == {("trader-1", "kite-sim"), ("trader-2", "dhan-sim")}
    assert token not in json.dumps(every[1])
    assert [c["user_id"] for c in dhan[1]["connections"]] == ["trader-2"]
    assert refused[0] == 403
