"""Trader broker connections against the simulators over real HTTP, stored in real Postgres.

Kite's login redirect and session exchange (SHA-256 checksum), Upstox's OAuth2 code flow and
Dhan's access token, each through :class:`BrokerLinkService` with the Postgres store, the local
envelope sealer and the HTTP session client; then orders through the real adapters under the
trader's own connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from local.simulators.fleet import Fleet, start_fleet
from shared.adapters.brokers.registry import BrokerGatewayRegistry
from shared.adapters.brokers.sessions import HttpBrokerSessions
from shared.adapters.crypto import LocalKeySealer
from shared.adapters.postgres.broker_links import PostgresBrokerLinkStore
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.pool import Database
from shared.adapters.secrets import JsonSecretStore
from shared.domain.broker_links import IST, LinkStatus
from shared.domain.errors import InvalidLinkError, LinkRefusedError, NotFoundError
from shared.domain.orders import ChildOrderStatus
from shared.services.broker_links import BrokerLinkService
from tests.brokers.support import Receiver
from tests.brokers.test_gateway import NoMarket, child

IDS = {"kite": "kite-sim", "upstox": "upstox-sim", "dhan": "dhan-sim"}
ALICE, BOB = "alice", "bob"


@dataclass
class Linking:
    """A fleet, its broker rows in Postgres, and the service and gateway built on them."""

    fleet: Fleet
    service: BrokerLinkService
    gateway: BrokerGatewayRegistry
    secrets: JsonSecretStore
    db: Database

    def sim(self, adapter: str) -> object:
        return self.fleet.simulators[adapter].sim

    def redirect(self, user_id: str, adapter: str) -> dict[str, str]:
        """Our login URL, then the simulator's login page: the redirect's query."""
        url = self.service.start_login(user_id, IDS[adapter]).login_url
        answer = httpx.get(url, follow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return dict(parse_qsl(urlsplit(answer.headers["location"]).query))

    def link(self, user_id: str, adapter: str) -> None:
        if adapter == "dhan":
            token = self.fleet.simulators["dhan"].sim.issue_token()
            self.service.put_token(user_id, IDS["dhan"], token)
        else:
            self.service.complete_login(user_id, IDS[adapter], self.redirect(user_id, adapter))

    def row(self, user_id: str, broker_id: str) -> dict[str, Any]:
        with self.db.connection() as conn:
            found = conn.execute(
                "SELECT * FROM broker_connections WHERE user_id = %s AND broker_id = %s",
                (user_id, broker_id),
            ).fetchone()
        assert found is not None
        return dict(found)


@pytest.fixture
def linking(db: Database, receiver: Receiver) -> Iterator[Linking]:
    run = f"links{time.monotonic_ns()}"
    fleet = start_fleet(receiver.url(run), broker_ids=IDS)
    try:
        brokers = PostgresBrokerRepository(db)
        for config in fleet.configs:
            brokers.upsert(config)
        secrets = JsonSecretStore(fleet.secrets_json())
        service = BrokerLinkService(
            links=PostgresBrokerLinkStore(db),
            sealer=LocalKeySealer(bytes(range(32))),
            sessions=HttpBrokerSessions(secrets),
            brokers=brokers,
            clock=lambda: datetime.now(UTC),
            new_state=lambda: f"state-{time.monotonic_ns()}",
        )
        gateway = BrokerGatewayRegistry(
            brokers,
            market=NoMarket(),
            seed=1,
            clock=lambda: datetime.now(UTC),
            secrets=secrets,
            accounts=service,
        )
        yield Linking(fleet, service, gateway, secrets, db)
    finally:
        fleet.stop()


def test_kite_links_by_login_redirect_and_session_exchange(linking: Linking) -> None:
    # GIVEN our login URL for Kite and the simulator's login page behind it
    query = linking.redirect(ALICE, "kite")
    assert set(query) >= {"request_token", "state", "status"}
    # WHEN the redirect comes back to the callback
    view = linking.service.complete_login(ALICE, "kite-sim", query)
    # THEN the connection is LIVE until 06:00 IST, with a masked account hint
    assert view.status is LinkStatus.LIVE
    assert view.expires_at is not None
    assert view.expires_at.astimezone(IST).hour == 6
    assert view.account_hint == "AB**34"
    # AND the session exchange carried the SHA-256 checksum of key, request token and secret
    [(_, _, headers, body)] = [r for r in linking.sim("kite").requests if r[1] == "/session/token"]  # type: ignore[attr-defined]
    form = dict(parse_qsl(body.decode()))
    assert headers["x-kite-version"] == "3"
    assert form["request_token"] == query["request_token"]
    assert len(form["checksum"]) == 64
    # AND the token is stored only sealed: no column holds it in clear
    token = linking.service.account(ALICE, "kite-sim").access_token.get_secret_value()
    row = linking.row(ALICE, "kite-sim")
    assert token.encode() not in bytes(row["token_ciphertext"])
    assert token not in json.dumps({k: str(v) for k, v in row.items()})


def test_an_order_goes_out_under_the_traders_own_connection(linking: Linking) -> None:
    # GIVEN Alice linked to Kite, Bob to nothing
    linking.link(ALICE, "kite")
    # WHEN a child of each is placed at Kite
    alice = linking.gateway.place(child("kite-sim", user_id=ALICE), timeout_s=5)
    calls_before = len(linking.sim("kite").requests)  # type: ignore[attr-defined]
    bob = linking.gateway.place(child("kite-sim", user_id=BOB), timeout_s=5)
    # THEN Alice's is placed under her token; Bob's is refused before anything is sent
    assert alice.status is ChildOrderStatus.PLACED, alice.reason
    token = linking.service.account(ALICE, "kite-sim").access_token.get_secret_value()
    placed = [r for r in linking.sim("kite").requests if r[1] == "/orders/regular"]  # type: ignore[attr-defined]
    assert placed[-1][2]["authorization"] == f"token sim-kite:{token}"
    assert bob.status is ChildOrderStatus.REJECTED
    assert bob.reason is not None
    assert "no live connection" in bob.reason
    assert len(linking.sim("kite").requests) == calls_before  # type: ignore[attr-defined]


def test_a_bad_checksum_is_refused_and_nothing_is_stored(linking: Linking) -> None:
    # GIVEN an app secret that is not Kite's (the checksum will not match)
    linking.secrets._mapping["kite-sim-app"] = json.dumps(
        {"api_key": "sim-kite", "api_secret": "not-the-secret"}
    )
    query = linking.redirect(ALICE, "kite")
    # WHEN the redirect is exchanged
    with pytest.raises(LinkRefusedError, match="checksum"):
        linking.service.complete_login(ALICE, "kite-sim", query)
    # THEN there is no connection
    assert linking.service.list(ALICE).connections == []


def test_states_are_single_use_bound_to_the_trader_and_unforgeable(linking: Linking) -> None:
    # GIVEN a redirect for Alice, exchanged once
    query = linking.redirect(ALICE, "kite")
    linking.service.complete_login(ALICE, "kite-sim", query)
    # WHEN the same state comes back again, a forged one comes, or none
    # THEN each is refused
    with pytest.raises(InvalidLinkError, match="already used"):
        linking.service.complete_login(ALICE, "kite-sim", query)
    with pytest.raises(InvalidLinkError, match="already used"):
        linking.service.complete_login(ALICE, "kite-sim", {**query, "state": "forged"})
    with pytest.raises(InvalidLinkError, match="missing"):
        linking.service.complete_login(ALICE, "kite-sim", {"request_token": "x"})
    # AND Alice's fresh state presented by Bob is refused (and burnt)
    stolen = linking.redirect(ALICE, "kite")
    with pytest.raises(InvalidLinkError, match="not issued to this trader"):
        linking.service.complete_login(BOB, "kite-sim", stolen)
    with pytest.raises(InvalidLinkError, match="already used"):
        linking.service.complete_login(ALICE, "kite-sim", stolen)
    assert linking.service.list(BOB).connections == []


def test_upstox_links_by_oauth2_code_and_dhan_by_access_token(linking: Linking) -> None:
    # GIVEN Upstox's authorization dialog and a token Dhan issued
    query = linking.redirect(ALICE, "upstox")
    assert "code" in query
    # WHEN each is linked
    upstox = linking.service.complete_login(ALICE, "upstox-sim", query)
    token = linking.fleet.simulators["dhan"].sim.issue_token()
    dhan = linking.service.put_token(ALICE, "dhan-sim", token)
    # THEN both are LIVE (Upstox until 03:30 IST, Dhan until its stated validity)
    assert upstox.status is LinkStatus.LIVE
    assert dhan.status is LinkStatus.LIVE
    assert upstox.expires_at is not None
    assert (upstox.expires_at.astimezone(IST).hour, upstox.expires_at.minute) == (3, 30)
    assert dhan.account_hint == "11******01"
    # AND a token Dhan does not know is refused, a Dhan flow on Kite too
    with pytest.raises(LinkRefusedError):
        linking.service.put_token(BOB, "dhan-sim", "not-a-dhan-token")
    with pytest.raises(InvalidLinkError):
        linking.service.put_token(BOB, "kite-sim", "x")
    with pytest.raises(NotFoundError):
        linking.service.start_login(BOB, "no-such-broker")


def test_a_refused_token_expires_the_connection_and_excludes_the_broker(linking: Linking) -> None:
    # GIVEN Alice linked to Kite, whose token Kite then invalidates (06:00 IST)
    linking.link(ALICE, "kite")
    token = linking.service.account(ALICE, "kite-sim").access_token.get_secret_value()
    linking.fleet.simulators["kite"].sim.revoke(token)
    assert linking.service.unavailable(ALICE).get("kite-sim") is None
    # WHEN her next child is placed
    result = linking.gateway.place(child("kite-sim", user_id=ALICE), timeout_s=5)
    # THEN Kite's TokenException rejects it, the connection is EXPIRED, and routing says why
    assert result.status is ChildOrderStatus.REJECTED
    [view] = linking.service.list(ALICE).connections
    assert view.status is LinkStatus.EXPIRED
    assert "kite connection expired" in linking.service.unavailable(ALICE)["kite-sim"]


def test_unlinking_erases_the_token_and_excludes_the_broker(linking: Linking) -> None:
    # GIVEN Alice linked to Dhan
    linking.link(ALICE, "dhan")
    # WHEN she unlinks
    view = linking.service.unlink(ALICE, "dhan-sim")
    # THEN the connection is REVOKED, its sealed token erased, and orders cannot use it
    assert view.status is LinkStatus.REVOKED
    row = linking.row(ALICE, "dhan-sim")
    assert row["token_ciphertext"] is None
    assert row["wrapped_key"] is None
    assert "unlinked" in linking.service.unavailable(ALICE)["dhan-sim"]
    result = linking.gateway.place(child("dhan-sim", user_id=ALICE), timeout_s=5)
    assert result.status is ChildOrderStatus.REJECTED
    # AND unlinking what is not linked is a 404
    with pytest.raises(NotFoundError):
        linking.service.unlink(BOB, "dhan-sim")


def test_refresh_asks_kite_to_log_in_again_and_rechecks_dhan(linking: Linking) -> None:
    # GIVEN Alice linked to Kite and Dhan
    linking.link(ALICE, "kite")
    linking.link(ALICE, "dhan")
    # WHEN each is refreshed
    kite = linking.service.refresh(ALICE, "kite-sim")
    dhan = linking.service.refresh(ALICE, "dhan-sim")
    # THEN Kite answers a new login URL; Dhan's token is checked again and stays LIVE
    assert kite.login_url is not None
    assert "api_key=sim-kite" in kite.login_url
    assert dhan.connection is not None
    assert dhan.connection.status is LinkStatus.LIVE
    # AND once Dhan invalidates the token, a refresh marks it EXPIRED
    token = linking.service.account(ALICE, "dhan-sim").access_token.get_secret_value()
    linking.fleet.simulators["dhan"].sim.revoke(token)
    again = linking.service.refresh(ALICE, "dhan-sim")
    assert again.connection is not None
    assert again.connection.status is LinkStatus.EXPIRED
