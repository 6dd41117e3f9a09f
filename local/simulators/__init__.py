"""Local simulators of the real brokers' HTTP APIs (Kite, Upstox, Dhan), for local mode and tests.

:func:`start_simulator` serves one on a given port in a background thread::

    running = start_simulator("kite", 8701, postback_url="http://127.0.0.1:8000/api/v1/webhooks/brokers/kite")
    running.sim.behaviour = Behaviour(outcome="partial")
    ...
    running.stop()

Each simulator speaks its broker's documented contract (see ``docs/brokers.md``) and posts its
postbacks as the real broker does (Kite signed with its checksum; Upstox and Dhan unsigned, to
a URL carrying the path token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local.simulators._core import Behaviour, RunningServer, Simulator, free_port, serve
from local.simulators.dhan import DhanSimulator
from local.simulators.dhan import build_app as dhan_app
from local.simulators.kite import KiteSimulator
from local.simulators.kite import build_app as kite_app
from local.simulators.upstox import UpstoxSimulator
from local.simulators.upstox import build_app as upstox_app


@dataclass
class RunningSimulator:
    """A simulator and the server that serves it."""

    broker: str
    sim: Simulator
    server: RunningServer

    @property
    def url(self) -> str:
        """The API root to configure as the broker's ``base_url`` (Dhan's includes ``/v2``)."""
        return self.server.url + ("/v2" if self.broker == "dhan" else "")

    def stop(self) -> None:
        """Stop serving and stop delivering postbacks."""
        self.server.stop()
        self.sim.close()


def start_simulator(
    broker: str, port: int | None = None, *, host: str = "127.0.0.1", **config: Any
) -> RunningSimulator:
    """Serve the simulator of ``broker`` (``kite``, ``upstox`` or ``dhan``) on ``host:port``.

    Parameters
    ----------
    broker
        Which broker.
    port
        The TCP port (a free one when ``None``).
    host
        Where to listen.
    config
        The simulator's settings (credentials, ``postback_url``, limits, instruments): see
        :class:`KiteSimulator`, :class:`UpstoxSimulator`, :class:`DhanSimulator`.

    Returns
    -------
    RunningSimulator
    """
    sim: Simulator
    if broker == "kite":
        sim = KiteSimulator(**config)
        app = kite_app(sim)
    elif broker == "upstox":
        sim = UpstoxSimulator(**config)
        app = upstox_app(sim)
    elif broker == "dhan":
        sim = DhanSimulator(**config)
        app = dhan_app(sim)
    else:
        raise ValueError(f"no simulator for broker {broker!r}")
    try:
        server = serve(app, port if port is not None else free_port(), host=host)
    except Exception:
        sim.close()
        raise
    return RunningSimulator(broker=broker, sim=sim, server=server)


__all__ = [
    "Behaviour",
    "DhanSimulator",
    "KiteSimulator",
    "RunningSimulator",
    "UpstoxSimulator",
    "start_simulator",
]
