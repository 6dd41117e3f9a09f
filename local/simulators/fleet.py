"""The three broker simulators together, with the broker rows and secrets that point at them.

What local mode needs to route through the real adapters: :func:`start_fleet` starts a Kite, an
Upstox and a Dhan simulator, and returns the ``brokers`` rows (``adapter`` ``kite``/``upstox``/
``dhan``, ``base_url`` at the simulator, the published limits) and the broker-secret document
(order-API credentials and webhook secrets) to seed and to pass as
``ROUTER_BROKER_SECRETS_JSON``. Postbacks go to ``webhook_base/<broker_id>`` (plus the path token
for Upstox and Dhan), the path the ``broker_webhook`` function serves.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from local.simulators import RunningSimulator, start_simulator
from shared.adapters.brokers.catalog import RealBrokerSettings, broker_config
from shared.domain.brokers import BrokerConfig
from shared.domain.models import FeeSchedule

INSTRUMENTS = {
    "RELIANCE": ("INE002A01018", "2885"),
    "TCS": ("INE467B01029", "11536"),
    "INFY": ("INE009A01021", "1594"),
    "HDFCBANK": ("INE040A01034", "1333"),
}
"""Symbol -> (ISIN, Dhan security id) of the NSE equities the simulators know."""


@dataclass
class Fleet:
    """Running simulators with the rows and secrets that point the router at them."""

    simulators: dict[str, RunningSimulator]
    configs: list[BrokerConfig]
    secrets: dict[str, str] = field(default_factory=dict)
    """The broker secret document: ``{ref: value}``."""

    def secrets_json(self) -> str:
        """The document as ``ROUTER_BROKER_SECRETS_JSON`` takes it."""
        return json.dumps(self.secrets)

    def stop(self) -> None:
        """Stop every simulator."""
        for running in self.simulators.values():
            running.stop()


def start_fleet(
    webhook_base: str,
    *,
    ports: Mapping[str, int | None] | None = None,
    broker_ids: Mapping[str, str] | None = None,
    redirect_base: str = "http://127.0.0.1/broker-connections",
) -> Fleet:
    """Start the Kite, Upstox and Dhan simulators and describe them as broker rows.

    Parameters
    ----------
    webhook_base
        Where postbacks go, without the broker id
        (``http://127.0.0.1:8000/api/v1/webhooks/brokers``).
    ports
        Port per adapter name (a free one when absent).
    broker_ids
        Our broker id per adapter name (``zerodha``, ``upstox``, ``dhan`` by default).
    redirect_base
        The link flow's return, without the broker id (the apps' registered redirect URLs are
        ``<redirect_base>/<broker_id>/callback``).

    Returns
    -------
    Fleet
    """
    ports = ports or {}
    ids = {"kite": "zerodha", "upstox": "upstox", "dhan": "dhan"} | dict(broker_ids or {})
    base = webhook_base.rstrip("/")
    fleet = Fleet(simulators={}, configs=[])
    kite_secret = secrets.token_hex(16)
    upstox_secret = secrets.token_hex(16)
    tokens = {name: secrets.token_urlsafe(32) for name in ("upstox", "dhan")}
    access = {name: secrets.token_hex(16) for name in ("kite", "upstox", "dhan")}
    try:
        fleet.simulators["kite"] = start_simulator(
            "kite",
            ports.get("kite"),
            api_key="sim-kite",
            access_token=access["kite"],
            api_secret=kite_secret,
            postback_url=f"{base}/{ids['kite']}",
            redirect_url=f"{redirect_base}/{ids['kite']}/callback",
        )
        fleet.simulators["upstox"] = start_simulator(
            "upstox",
            ports.get("upstox"),
            access_token=access["upstox"],
            instruments={f"NSE_EQ|{isin}": ("NSE", s) for s, (isin, _) in INSTRUMENTS.items()},
            postback_url=f"{base}/{ids['upstox']}/{tokens['upstox']}",
            client_id="sim-upstox",
            client_secret=upstox_secret,
            redirect_uri=f"{redirect_base}/{ids['upstox']}/callback",
        )
        fleet.simulators["dhan"] = start_simulator(
            "dhan",
            ports.get("dhan"),
            client_id="1100000001",
            access_token=access["dhan"],
            security_ids={sid: ("NSE", s) for s, (_, sid) in INSTRUMENTS.items()},
            postback_url=f"{base}/{ids['dhan']}/{tokens['dhan']}",
        )
    except Exception:
        fleet.stop()
        raise
    credentials = {
        "kite": {"api_key": "sim-kite", "access_token": access["kite"]},
        "upstox": {"access_token": access["upstox"]},
        "dhan": {"client_id": "1100000001", "access_token": access["dhan"]},
    }
    webhook_secrets = {"kite": kite_secret, **tokens}
    # The apps' credentials for the link flow (Dhan links with a token: no app).
    apps = {
        "kite": {"api_key": "sim-kite", "api_secret": kite_secret},
        "upstox": {
            "client_id": "sim-upstox",
            "client_secret": upstox_secret,
            "redirect_uri": f"{redirect_base}/{ids['upstox']}/callback",
        },
    }
    login_paths = {"kite": "/connect/login", "upstox": "/v2/login/authorization/dialog"}
    instrument_keys = {f"NSE:{s}": f"NSE_EQ|{isin}" for s, (isin, _) in INSTRUMENTS.items()}
    security_ids = {f"NSE:{s}": sid for s, (_, sid) in INSTRUMENTS.items()}
    for name, running in fleet.simulators.items():
        broker_id = ids[name]
        fleet.secrets[f"{broker_id}-account"] = json.dumps(credentials[name])
        fleet.secrets[f"{broker_id}-webhook"] = webhook_secrets[name]
        if name in apps:
            fleet.secrets[f"{broker_id}-app"] = json.dumps(apps[name])
        fleet.configs.append(
            broker_config(
                broker_id,
                name,
                display_name=f"{name.title()} (simulated)",
                settings=RealBrokerSettings(
                    credentials_ref=f"{broker_id}-account",
                    base_url=running.url,
                    instruments=instrument_keys if name == "upstox" else {},
                    security_ids=security_ids if name == "dhan" else {},
                    app_ref=f"{broker_id}-app" if name in apps else None,
                    login_url=running.server.url + login_paths[name] if name in apps else None,
                ),
                webhook_secret_ref=f"{broker_id}-webhook",
                fee_schedule=FeeSchedule(),
            )
        )
    return fleet
