"""Broker simulators on loopback, a postback receiver, and the adapters pointed at them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from local.simulators import start_simulator
from local.simulators._core import free_port as _free_port
from local.simulators._core import serve
from shared.adapters.brokers.dhan import DhanClient
from shared.adapters.brokers.gateway import TaggedClient
from shared.adapters.brokers.kite import KiteClient
from shared.adapters.brokers.upstox import UpstoxClient
from shared.domain.broker_orders import BrokerAccount
from tests.brokers.support import (
    DHAN_PATH_TOKEN,
    KITE_SECRET,
    UPSTOX_PATH_TOKEN,
    BrokerCase,
    Postback,
    Receiver,
)

INSTRUMENTS = {"NSE_EQ|INE002A01018": ("NSE", "RELIANCE"), "BSE_EQ|INE467B01029": ("BSE", "TCS")}
SECURITY_IDS = {"2885": ("NSE", "RELIANCE"), "532540": ("BSE", "TCS")}


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """An HTTP server that stores every postback it receives."""
    holder: list[Receiver] = []

    async def take(request: Request) -> JSONResponse:
        body = await request.body()
        with holder[0]._lock:
            holder[0].received.append(Postback(request.url.path, body, dict(request.headers)))
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/webhooks/{rest:path}", take, methods=["POST"])])
    server = serve(app, _free_port())
    holder.append(Receiver(server))
    try:
        yield holder[0]
    finally:
        server.stop()


def make_case(name: str, receiver: Receiver, **sim_config: Any) -> BrokerCase:
    """Start ``name``'s simulator (postbacks to ``receiver``) and build its adapter."""
    token = f"{name}-access-token"
    # A run id first keeps each test's postbacks apart on the shared receiver; the path token
    # (Upstox, Dhan) stays the last segment, as in the broker's configured webhook URL.
    run = f"{time.monotonic_ns()}/{name}"
    prefix = {
        "kite": run,
        "upstox": f"{run}/{UPSTOX_PATH_TOKEN}",
        "dhan": f"{run}/{DHAN_PATH_TOKEN}",
    }[name]
    config: dict[str, Any] = {"access_token": token, "postback_url": receiver.url(prefix)}
    if name == "kite":
        config |= {"api_key": "kite-api-key", "api_secret": KITE_SECRET}
    elif name == "upstox":
        config["instruments"] = INSTRUMENTS
    else:
        config |= {"client_id": "1100000001", "security_ids": SECURITY_IDS}
    running = start_simulator(name, **(config | sim_config))
    client: TaggedClient
    if name == "kite":
        client = KiteClient(running.url)
        account = BrokerAccount(
            account_id="platform", api_key="kite-api-key", access_token=SecretStr(token)
        )
    elif name == "upstox":
        client = UpstoxClient(
            running.url, instruments={f"{e}:{s}": k for k, (e, s) in INSTRUMENTS.items()}
        )
        account = BrokerAccount(account_id="platform", access_token=SecretStr(token))
    else:
        client = DhanClient(
            running.url, security_ids={f"{e}:{s}": k for k, (e, s) in SECURITY_IDS.items()}
        )
        account = BrokerAccount(
            account_id="platform", client_id="1100000001", access_token=SecretStr(token)
        )
    return BrokerCase(name, running, client, account, prefix)


@pytest.fixture(params=["kite", "upstox", "dhan"])
def case(request: pytest.FixtureRequest, receiver: Receiver) -> Iterator[BrokerCase]:
    """Each broker in turn, with a fresh simulator."""
    made = make_case(request.param, receiver)
    try:
        yield made
    finally:
        made.running.stop()


@pytest.fixture
def case_factory(receiver: Receiver) -> Iterator[Callable[..., BrokerCase]]:
    """Builds a case with extra simulator settings (rate limits); stops them all afterwards."""
    made: list[BrokerCase] = []

    def build(name: str, **sim_config: object) -> BrokerCase:
        made.append(make_case(name, receiver, **sim_config))
        return made[-1]

    try:
        yield build
    finally:
        for one in made:
            one.running.stop()
