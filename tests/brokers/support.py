"""Helpers of the tests in tests/brokers/ (importable: tests never import a conftest module)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local.simulators import RunningSimulator
from local.simulators._core import RunningServer
from shared.adapters.brokers.gateway import TaggedClient
from shared.domain.broker_orders import BrokerAccount

KITE_SECRET = "kite-api-secret-for-tests"

UPSTOX_PATH_TOKEN = "upstox-path-token-0123456789abcdef0123456789"

DHAN_PATH_TOKEN = "dhan-path-token-0123456789abcdef0123456789ab"


@dataclass
class Postback:
    """One postback as received."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Collects postbacks posted to ``/webhooks/...``."""

    server: RunningServer
    received: list[Postback] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.server.url}/webhooks/{path}"

    def wait_for(self, count: int, *, prefix: str = "", timeout_s: float = 5.0) -> list[Postback]:
        """Postbacks under ``prefix``, once ``count`` of them arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                got = [p for p in self.received if p.path.startswith(f"/webhooks/{prefix}")]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.01)


@dataclass
class BrokerCase:
    """One broker: its simulator, the adapter pointed at it, and an account it accepts."""

    name: str
    running: RunningSimulator
    client: TaggedClient
    account: BrokerAccount
    postback_prefix: str

    @property
    def sim(self) -> Any:
        """The simulator (typed loosely: each broker's has its own settings)."""
        return self.running.sim
