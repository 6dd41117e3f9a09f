"""Local mode's real brokers: the Kite, Upstox and Dhan simulators behind the real adapters.

``order-router run`` starts the simulator fleet (``local/simulators``), registers one broker per
simulator (``kite-sim``, ``upstox-sim``, ``dhan-sim``; ``adapter`` ``kite``/``upstox``/``dhan``,
``base_url`` at the simulator), seeds their profiles like their paper twins' (for the symbols
the simulators know), and links the local trader's accounts through the real link flows:
Kite's login redirect and session exchange, Upstox's OAuth2 code flow, and a Dhan access token
checked with Dhan's profile call. The paper brokers stay (docs/local-mode.md).
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from local import seed
from local.runtime import MarketFeed
from local.simulators.fleet import INSTRUMENTS, Fleet, start_fleet
from local.simulators.kite import KiteSimulator
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import PostgresProfileRepository
from shared.domain.contracts import TRADER_PREFIX, WEBHOOK_PREFIX
from shared.domain.models import BrokerProfile
from shared.services.broker_links import BrokerLinkService, ConnectionView

BROKER_IDS = {"kite": "kite-sim", "upstox": "upstox-sim", "dhan": "dhan-sim"}
"""Adapter -> our id of its simulated broker (the paper ``zerodha``/``upstox``/``dhan`` stay)."""
PAPER_TWINS = {"kite": "zerodha", "upstox": "upstox", "dhan": "dhan"}
"""Whose seeded fees and profile figures each simulated broker starts from."""
KEY_FILE = "connection-key"
POSTBACK_DELAY_S = 1.0
"""Postbacks leave this long after the state change: after the routing service has recorded
the broker's order id, which it does once every child of the order is placed."""


def connection_key(data_dir: Path) -> str:
    """The local key-encryption key of broker tokens, kept in ``<data_dir>/connection-key``.

    Kept between runs with the database it protects; created 0600 (64 hex characters).
    """
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def start_simulated_brokers(api_url: str) -> Fleet:
    """Start the three simulators, postbacks to this run's webhook routes.

    Each fills at the seeded last price of the symbol (the local market).
    """
    fleet = start_fleet(
        f"{api_url}{WEBHOOK_PREFIX}",
        broker_ids=BROKER_IDS,
        redirect_base=f"{api_url}{TRADER_PREFIX}/broker-connections",
    )
    prices = {symbol: Decimal(seed.SYMBOLS[symbol][0]) for symbol in INSTRUMENTS}
    for running in fleet.simulators.values():
        running.sim.book.prices.update(prices)
        running.sim.postback_delay_s = POSTBACK_DELAY_S
    return fleet


def simulated_profiles(fleet: Fleet, now: datetime) -> list[BrokerProfile]:
    """Profiles of the simulated brokers: their paper twin's, for the symbols they know."""
    twins = {PAPER_TWINS[c.adapter]: c for c in fleet.configs}
    return [
        profile.model_copy(
            update={
                "broker_id": twins[profile.broker_id].broker_id,
                "rate_limit_per_s": twins[profile.broker_id].rate_limit_per_s,
            }
        )
        for profile in seed.seed_profiles(now)
        if profile.broker_id in twins and profile.symbol in INSTRUMENTS
    ]


def register_simulated_brokers(database: Database, fleet: Fleet) -> int:
    """Register the simulated brokers (their URLs change every run) with their twins' fees.

    Returns
    -------
    int
        Brokers registered.
    """
    brokers = PostgresBrokerRepository(database)
    for config in fleet.configs:
        twin = seed.BROKERS[PAPER_TWINS[config.adapter]]
        brokers.upsert(config.model_copy(update={"fee_schedule": twin["fees"]}))
    return len(fleet.configs)


def seed_simulated_brokers(
    database: Database, fleet: Fleet, now: datetime, *, keep_for: timedelta = timedelta(0)
) -> int:
    """Register the simulated brokers (their URLs change every run) and seed their profiles.

    Returns
    -------
    int
        Profiles written (fresher ones keep what the last run learned).
    """
    register_simulated_brokers(database, fleet)
    profiles = PostgresProfileRepository(database)
    written = 0
    for profile in simulated_profiles(fleet, now):
        current = profiles.get(profile.broker_id, profile.symbol) if keep_for else None
        if current is None or now - current.last_updated >= keep_for:
            profiles.upsert(profile)
            written += 1
    return written


def link_trader(service: BrokerLinkService, fleet: Fleet, user_id: str) -> list[ConnectionView]:
    """Link ``user_id``'s simulated accounts through the real link flows.

    Kite and Upstox: our login URL, the simulator's login page (which logs the trader in at
    once and redirects), the redirect's ``request_token``/``code`` and ``state`` handed to the
    callback. Dhan: a token "generated on Dhan's web" (issued by the simulator) put through the
    access-token flow.
    """
    views = []
    # The login URLs carry the single-use states: not for the console.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with httpx.Client(timeout=5.0, follow_redirects=False) as client:
        for adapter in ("kite", "upstox"):
            broker_id = BROKER_IDS[adapter]
            login = service.start_login(user_id, broker_id).login_url
            answer = client.get(login)
            params = dict(parse_qsl(urlsplit(answer.headers.get("location", "")).query))
            views.append(service.complete_login(user_id, broker_id, params))
    token = fleet.simulators["dhan"].sim.issue_token()
    views.append(service.put_token(user_id, BROKER_IDS["dhan"], token))
    return views


def market_feed(fleet: Fleet) -> MarketFeed:
    """Local mode's market data: the fleet's Kite simulator, on a platform session of its own.

    The simulator accepts one more access token, the platform's (not a trader's), which the
    handlers read from the secret store as in AWS (docs/market-data.md).
    """
    kite = fleet.simulators["kite"]
    token = secrets.token_hex(16)
    assert isinstance(kite.sim, KiteSimulator)
    kite.sim.tokens.add(token)
    return MarketFeed(url=kite.url, api_key=kite.sim.api_key, token=token)
