"""``order-router run --workers N``: N containers (worker processes) per function.

Each container runs one invocation at a time, as a Lambda container does; requests beyond N
wait for a free one (``queue`` in the ``Server-Timing`` header), none is refused or lost.
"""

from __future__ import annotations

import concurrent.futures
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from local.runtime import Invoker
from shared.domain.contracts import ApiPath
from tests.e2e.support import Runtime, cli, start_runtime, stop_runtime

ORDER = {"symbol": "RELIANCE", "side": "BUY", "quantity": 10, "orderType": "MARKET"}
WORKERS = 2


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    run = start_runtime(tmp_path_factory.mktemp("order-router-workers"), f"--workers={WORKERS}")
    try:
        yield run
    finally:
        stop_runtime(run)


def _timing(response: httpx.Response) -> dict[str, float]:
    parts = (p.strip().partition(";dur=") for p in response.headers["server-timing"].split(","))
    return {name: float(value) for name, _, value in parts}


def test_each_pooled_function_runs_in_n_worker_processes(pooled: Runtime) -> None:
    # GIVEN a run started with --workers 2
    # WHEN its process tree is listed
    children = psutil.Process(pooled.process.pid).children()
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    # THEN route_order, broker_webhook and track_execution have 2 containers each
    assert len(workers) == 3 * WORKERS


def test_concurrent_requests_are_all_answered_with_their_stages(pooled: Runtime) -> None:
    # GIVEN more concurrent analyze requests than route_order has containers
    trader = f"t-{uuid.uuid4().hex[:8]}"

    def analyze(_: int) -> httpx.Response:
        return httpx.post(
            f"{pooled.api}{ApiPath.ANALYZE_ORDER}", json=ORDER, headers=pooled.auth(trader)
        )

    # WHEN they are sent at once
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(analyze, range(16)))
    # THEN every one is answered 200 with where its time went
    assert [r.status_code for r in responses] == [200] * 16
    timings = [_timing(r) for r in responses]
    assert all(set(t) == {"front", "queue", "handler"} for t in timings)
    assert all(t["handler"] > 0 for t in timings)


def test_a_bad_request_is_answered_by_the_container_not_the_pool(pooled: Runtime) -> None:
    # GIVEN an order the API refuses (quantity 0)
    # WHEN it is sent to the pooled route_order
    response = httpx.post(
        f"{pooled.api}{ApiPath.ANALYZE_ORDER}",
        json={**ORDER, "quantity": 0},
        headers=pooled.auth("t-bad"),
    )
    # THEN the handler's own 422 comes back (a worker's answer, not a 500 of the front door)
    assert response.status_code == 422
    assert response.json()["error"]["code"]


def test_a_smart_order_is_routed_and_tracked_through_the_pools(pooled: Runtime) -> None:
    # GIVEN a trader; WHEN it sends a smart order through the pooled route_order
    trader = f"t-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{pooled.api}{ApiPath.SMART_ORDER}",
        json={**ORDER, "clientOrderId": uuid.uuid4().hex},
        headers=pooled.auth(trader),
    )
    # THEN it is routed, and reading it back (another container, maybe) finds it
    assert response.status_code == 200, response.text
    order_id = response.json()["orderId"]
    view = httpx.get(
        f"{pooled.api}{ApiPath.ORDER.format(orderId=order_id)}", headers=pooled.auth(trader)
    )
    assert view.status_code == 200
    assert view.json()["order"]["orderId"] == order_id


def test_workers_must_be_positive() -> None:
    # GIVEN / WHEN an invoker or the CLI is asked for 0 containers
    # THEN both refuse it
    with pytest.raises(ValueError, match="at least 1"):
        Invoker(0)
    result = cli("run", "--workers=0", f"--data-dir={Path(os.devnull)}")
    assert result.returncode == 2
    assert "must be positive" in result.stderr
