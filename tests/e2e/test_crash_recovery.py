"""A crash loses nothing and blocks nothing: SIGKILL mid-burst, restart on the same data dir.

The real ``order-router run`` is killed with SIGKILL while a burst of concurrent orders is being
routed (at a moment when an order is stored with its decision but not yet answered), then started
again on the same data directory. Its Postgres and Redis are left running by the kill, as they
would be on a developer's machine; the restart must reclaim them, and the reconciler must finish
the order the kill interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from local.runtime import DATABASE
from local.services import REDIS_PID_FILE, EmbeddedPostgres, EmbeddedRedis
from shared.domain.contracts import ApiPath
from tests.e2e.support import API, PAPER_BEHAVIOUR, Runtime, cli, start_runtime, stop_runtime

RECONCILE_AFTER_S = 3.0
OPTIONS = (f"--reconcile-after={RECONCILE_AFTER_S}", "--reconcile-interval=0.5")
BURST = 40
# Placements take a visible while, so the kill finds an order between its decision and answer.
SLOW_PAPER = {**PAPER_BEHAVIOUR, "simulateDelay": True, "ackLatencyMs": 250, "ackJitterMs": 0}
ORDER = {"symbol": "INFY", "side": "BUY", "quantity": 20, "orderType": "MARKET"}


def sql(run_or_port: Runtime | int, query: str, *params: Any) -> list[tuple[Any, ...]]:
    port = run_or_port.pg_port if isinstance(run_or_port, Runtime) else run_or_port
    url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description is not None else []


def wait_for(check: Callable[[], Any], *, within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {within_s} s")
        time.sleep(0.1)


class Runs:
    """Runs of one test on one data directory, all stopped however the test ends."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.started: list[Runtime] = []

    def start(self, *options: str) -> Runtime:
        run = start_runtime(self.data_dir, *options)
        self.started.append(run)
        return run

    def stop_all(self) -> None:
        for run in self.started:
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait(timeout=10)
        # Then the servers a killed run leaves behind (the code under test, used as cleanup).
        EmbeddedRedis(data_dir=self.data_dir / "redis").reclaim()
        EmbeddedPostgres(self.data_dir / "postgres").reclaim()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    """Start runs on one data directory; every process and server is stopped afterwards."""
    started = Runs(tmp_path / "crash")
    try:
        yield started
    finally:
        started.stop_all()


def place(run: Runtime, token: str, n: int) -> tuple[int, dict[str, Any], httpx.Response | None]:
    """Order ``n`` of the burst: its key in the body for even ``n``, in the header for odd."""
    body: dict[str, Any] = dict(ORDER)
    headers = {"Authorization": f"Bearer {token}"}
    if n % 2:
        headers["Idempotency-Key"] = f"burst-{n}"
    else:
        body["clientOrderId"] = f"burst-{n}"
    try:
        response = httpx.post(
            f"{run.api}{API}/orders/smart", json=body, headers=headers, timeout=60
        )
    except httpx.HTTPError:  # the process died under it
        return n, body, None
    return n, body, response


def retry(run: Runtime, token: str, n: int, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if n % 2:
        headers["Idempotency-Key"] = f"burst-{n}"
    return httpx.post(f"{run.api}{API}/orders/smart", json=body, headers=headers, timeout=60)


def test_sigkill_mid_burst_loses_nothing_and_blocks_nothing(runs: Runs) -> None:
    # GIVEN a run whose paper brokers take 250 ms to acknowledge
    data_dir = runs.data_dir
    first = runs.start(*OPTIONS)
    trader = f"trader-{uuid.uuid4().hex[:8]}"
    token = first.token(trader)
    sql(
        first,
        "UPDATE brokers SET adapter_config = adapter_config || %s::jsonb",
        json.dumps(SLOW_PAPER),
    )
    # WHEN a burst of 40 concurrent orders arrives and, once a quarter of them were answered,
    # the process is SIGKILLed while an order is stored with its decision but not yet answered
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        futures = [pool.submit(place, first, token, n) for n in range(BURST)]
        wait_for(
            lambda: sql(
                first,
                "SELECT 1 FROM orders HAVING count(response) >= %s AND count(*) > count(response)",
                BURST // 4,
            ),
            within_s=60,
            what="an order between its decision and its answer",
        )
        interrupted = {
            row[0] for row in sql(first, "SELECT order_id FROM orders WHERE response IS NULL")
        }
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        outcomes = [f.result() for f in futures]
    answered = {n: r.json() for n, _, r in outcomes if r is not None and r.is_success}
    assert interrupted, "the kill must catch an order mid-flight"
    assert len(answered) >= BURST // 4 - len(interrupted)
    # THEN (the kill left Postgres and Redis running on the data directory)
    assert (data_dir / "postgres" / "postmaster.pid").exists()
    assert (data_dir / "redis" / REDIS_PID_FILE).exists()

    # WHEN the service starts again on the same data directory
    second = runs.start(*OPTIONS)
    try:
        # THEN it comes up, having reclaimed the servers the killed run left
        assert "Reclaimed   PostgreSQL and Redis" in second.output()
        # AND every order that got a 2xx is stored once, with its decision and its answer
        for body in answered.values():
            rows = sql(
                second,
                "SELECT o.response IS NOT NULL, d.id FROM orders o "
                "JOIN order_routing_decisions d USING (order_id) WHERE o.order_id = %s",
                body["orderId"],
            )
            assert len(rows) == 1
            assert rows[0][0] is True
        # AND no child stays PENDING past the reconciler's bound: the interrupted order is final
        wait_for(
            lambda: not sql(second, "SELECT 1 FROM child_orders WHERE status = 'PENDING'"),
            within_s=RECONCILE_AFTER_S + 15,
            what="every PENDING child reconciled",
        )
        finished = sql(
            second,
            "SELECT status, response IS NOT NULL FROM orders WHERE order_id = ANY(%s)",
            list(interrupted),
        )
        assert finished
        assert all(has_answer for _, has_answer in finished)
        # AND every outbox event is delivered once the relay ran
        wait_for(
            lambda: not sql(second, "SELECT 1 FROM event_outbox WHERE published_at IS NULL"),
            within_s=30,
            what="an empty outbox",
        )
        # AND a retry of every key gets a final answer: the stored one for each 2xx order
        token = second.token(trader)
        with ThreadPoolExecutor(max_workers=8) as pool:
            retries = list(pool.map(lambda o: (o[0], retry(second, token, o[0], o[1])), outcomes))
        for n, response in retries:
            assert response.status_code != 409, response.text
            assert response.status_code == 200, response.text
            if n in answered:
                assert response.json()["orderId"] == answered[n]["orderId"]
                assert response.json()["replayed"] is True
        stored = sql(second, "SELECT count(*) FROM orders WHERE user_id = %s", trader)
        assert stored == [(BURST,)]
    finally:
        stop_runtime(second)


def test_a_redis_that_dies_under_local_mode_is_restarted(runs: Runs) -> None:
    # GIVEN a running service
    run = runs.start()
    try:
        pid_file = runs.data_dir / "redis" / REDIS_PID_FILE
        killed = int(pid_file.read_text())
        # WHEN its Redis is killed
        os.kill(killed, signal.SIGKILL)

        # THEN the watchdog starts it again on the same port, and says so
        def answers() -> bool:
            client = redis.Redis(host="127.0.0.1", port=run.redis_port, socket_timeout=0.5)
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
            finally:
                client.close()

        wait_for(
            lambda: answers() and int(pid_file.read_text() or 0) != killed,
            within_s=15,
            what="a restarted Redis",
        )
        assert "Redis restarted" in wait_for(
            lambda: "Redis restarted" in run.output() and run.output(),
            within_s=5,
            what="the restart in the log",
        )
        # AND orders route again
        response = httpx.post(
            f"{run.api}{API}/orders/smart",
            json=ORDER,
            headers=run.auth("trader-redis-restart"),
            timeout=30,
        )
        assert response.status_code == 200, response.text
    finally:
        stop_runtime(run)


def test_a_second_run_on_a_live_data_dir_is_refused(runs: Runs) -> None:
    # GIVEN a running service
    run = runs.start()
    try:
        # WHEN another run is started on the same data directory
        outcome = cli("run", f"--data-dir={runs.data_dir}", "--http-port=1", timeout=30)
        # THEN it refuses in one line and leaves the live run's servers alone
        assert outcome.returncode == 2
        assert "another order-router run" in outcome.stderr
        assert httpx.get(f"{run.api}{ApiPath.HEALTH}", timeout=5).status_code == 200
    finally:
        stop_runtime(run)
