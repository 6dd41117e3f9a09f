"""The locust file of ``make load``: open-loop arrivals of a traffic mix at a target rate.

Locust's users are closed loops (a user sends its next request after the last one answered), so
a slow server lowers the offered load and hides its own queueing (coordinated omission). Here one
user per locust process is only a clock: it starts each request in a greenlet of its own at
Poisson arrival times of the target rate, whether earlier requests answered or not, and records
how late each start was (``start_lag``) so a saturated load generator shows up in the results.

Configured by environment variables (``bench/load.py`` sets them):

``LOAD_RATE``      arrivals per second (this process)
``LOAD_MIX``       JSON ``{"analyze": w, "smart": w, "order": w, "analytics": w, "postback": w}``
``LOAD_TOKENS``    file with one trader JWT per line (orders spread over many traders)
``LOAD_SECRETS``   JSON ``{"<broker>/webhook": secret}`` (signed postbacks)
``LOAD_WARMUP_S``  seconds excluded from the figures at the start
``LOAD_OUT``       where the figures are written (JSON) when the run stops

Not part of ``make bench`` (which would import it); ``bench/load.py`` runs it under locust.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

from shared.adapters.brokers.webhooks.verification import sign_webhook
from shared.domain.contracts import ApiPath

ORDER = {"side": "BUY", "quantity": 100, "orderType": "MARKET"}
SYMBOLS = ("RELIANCE", "TCS", "INFY", "HDFCBANK")
SAMPLES: list[tuple[float, str, float, bool, dict[str, float], str]] = []
"""(start time, kind, seconds, ok, server stages in ms, status or error) of every request."""
LAG: list[float] = []
IN_FLIGHT = collections.Counter[str]()
"""Requests started and not answered yet, by kind (unanswered at the end count as errors)."""
RECENT_CHILDREN: collections.deque[dict[str, Any]] = collections.deque(maxlen=500)
RECENT_ORDERS: collections.deque[tuple[str, str]] = collections.deque(maxlen=500)
STARTED = time.monotonic()


def _stages(response: Any) -> dict[str, float]:
    # The local server's Server-Timing header: front door, queue and handler milliseconds.
    header = str((response.headers or {}).get("server-timing") or "")
    stages: dict[str, float] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition(";dur=")
        if value:
            stages[name] = float(value)
    return stages


def _answer(response: Any, good: tuple[int, ...]) -> tuple[bool, dict[str, float], str]:
    # A status code of 0 is geventhttpclient's word for no answer (a reset or a timeout).
    code = int(response.status_code or 0)
    error = getattr(response, "error", None) if code == 0 else None
    return code in good, _stages(response), type(error).__name__ if error else str(code)


class OpenLoop(FastHttpUser):
    """One clock per process: requests start at Poisson times, never waiting on each other."""

    wait_time = constant(0)
    # Connections the greenlets share; more than the requests in flight at the target rate.
    concurrency = 400
    network_timeout = 30.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.rate = float(os.environ["LOAD_RATE"])
        mix: dict[str, float] = json.loads(os.environ["LOAD_MIX"])
        self.kinds = list(mix)
        self.weights = [mix[k] for k in self.kinds]
        with open(os.environ["LOAD_TOKENS"]) as handle:
            self.tokens = [line.strip() for line in handle if line.strip()]
        self.secrets: dict[str, str] = json.loads(os.environ.get("LOAD_SECRETS", "{}"))
        self.sequence = itertools.count()

    @task
    def arrivals(self) -> None:
        """Start one request per arrival for the whole run."""
        due = time.monotonic()
        while True:
            due += random.expovariate(self.rate)
            delay = due - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            LAG.append(max(0.0, -delay))
            gevent.spawn(self._one, random.choices(self.kinds, self.weights)[0])

    def _one(self, kind: str) -> None:
        token = random.choice(self.tokens)
        started = time.monotonic()
        IN_FLIGHT[kind] += 1
        try:
            ok, stages, outcome = getattr(self, f"_{kind}")(token)
        except Exception as exc:  # a refused connection or a timeout is an error of the run
            ok, stages, outcome = False, {}, type(exc).__name__
        IN_FLIGHT[kind] -= 1
        SAMPLES.append((started - STARTED, kind, time.monotonic() - started, ok, stages, outcome))

    def _post(self, path: str, token: str, body: dict[str, Any]) -> Any:
        return self.client.post(
            path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            name=path,
        )

    def _analyze(self, token: str) -> tuple[bool, dict[str, float], str]:
        body = {**ORDER, "symbol": random.choice(SYMBOLS)}
        response = self._post(ApiPath.ANALYZE_ORDER, token, body)
        return _answer(response, (200,))

    def _smart(self, token: str) -> tuple[bool, dict[str, float], str]:
        body = {
            **ORDER,
            "symbol": random.choice(SYMBOLS),
            "clientOrderId": f"load-{os.getpid()}-{next(self.sequence)}",
        }
        response = self._post(ApiPath.SMART_ORDER, token, body)
        if response.status_code == 200:
            RECENT_ORDERS.append((token, response.json().get("orderId", "")))
        return _answer(response, (200,))

    def _order(self, token: str) -> tuple[bool, dict[str, float], str]:
        if not RECENT_ORDERS:
            return self._analyze(token)
        owner, order_id = random.choice(RECENT_ORDERS)
        response = self.client.get(
            ApiPath.ORDER.format(orderId=order_id),
            headers={"Authorization": f"Bearer {owner}"},
            name=ApiPath.ORDER,
        )
        if response.status_code == 200:
            view = response.json()
            symbol = (view.get("order") or {}).get("symbol", "RELIANCE")
            for child in view.get("childOrders") or []:
                if child.get("brokerOrderId"):
                    RECENT_CHILDREN.append({**child, "symbol": symbol})
        return _answer(response, (200,))

    def _analytics(self, token: str) -> tuple[bool, dict[str, float], str]:
        response = self.client.get(
            f"{ApiPath.EXECUTION_ANALYTICS}?days=1",
            headers={"Authorization": f"Bearer {token}"},
            name=ApiPath.EXECUTION_ANALYTICS,
        )
        return _answer(response, (200,))

    def _postback(self, token: str) -> tuple[bool, dict[str, float], str]:
        if not RECENT_CHILDREN:
            return self._analyze(token)
        child = random.choice(RECENT_CHILDREN)
        secret = self.secrets.get(f"{child['brokerId']}/webhook")
        if secret is None:
            return self._analyze(token)
        raw = json.dumps(_fill_report(child)).encode()
        response = self.client.post(
            ApiPath.SIGNED_WEBHOOK.format(brokerId=child["brokerId"]),
            data=raw.decode(),
            headers={
                "Content-Type": "application/json",
                **sign_webhook(raw, secret, timestamp=int(time.time())),
            },
            name=ApiPath.SIGNED_WEBHOOK,
        )
        # 200 applied, 202 duplicate or quarantined (a fill the paper broker already reported):
        # either is the broker's report accepted and stored once.
        return _answer(response, (200, 202))


def _fill_report(child: dict[str, Any]) -> dict[str, Any]:
    return {
        "brokerId": child["brokerId"],
        "brokerOrderId": child["brokerOrderId"],
        "childOrderId": child["childOrderId"],
        "status": "FILLED",
        "quantity": child["quantity"],
        "filledQuantity": child["quantity"],
        "averagePrice": f"{float(child.get('expectedPrice') or 1295.5):.2f}",
        "symbol": child["symbol"],
        "exchange": "NSE",
        "side": "BUY",
        "timestamp": datetime.now(UTC).isoformat(),
    }


def _write_samples(environment: Any, **_: Any) -> None:
    # Every sample, with its start: the runner keeps those started after the warm-up for
    # latency, and counts completions inside the window for throughput.
    with open(os.environ["LOAD_OUT"], "w") as handle:
        json.dump(
            {
                "samples": SAMPLES,
                "lag": LAG,
                "ended_s": time.monotonic() - STARTED,
                "in_flight": dict(IN_FLIGHT),
            },
            handle,
        )


events.quitting.add_listener(_write_samples)
