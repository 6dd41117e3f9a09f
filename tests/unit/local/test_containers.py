"""ContainerPool: N worker processes, one invocation each at a time, from the loop or threads."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import pytest

from local.containers import ContainerGoneError, ContainerPool


def worker_main(conn: Connection) -> None:
    """A stand-in container: ``("sleep", s)``, ``("raise", text)`` or ``("die",)``."""
    while True:
        message = conn.recv()
        if message is None:
            return
        if message[0] == "die":
            os._exit(3)
        if message[0] == "raise":
            conn.send(("error", ValueError(message[1])))
            continue
        started = time.monotonic()
        time.sleep(message[1])
        conn.send(("ok", (os.getpid(), started, time.monotonic())))


@pytest.fixture
def pool() -> Iterator[ContainerPool]:
    containers = ContainerPool(multiprocessing.get_context("spawn"), 2, worker_main)
    yield containers
    containers.close()


def _never_overlapping(spans: list[tuple[int, float, float]]) -> bool:
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for pid, start, end in spans:
        by_pid.setdefault(pid, []).append((start, end))
    for runs in by_pid.values():
        runs.sort()
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(runs)):
            return False
    return True


def test_more_requests_than_containers_all_run_one_at_a_time_per_container(
    pool: ContainerPool,
) -> None:
    # GIVEN 2 containers and 8 invocations at once: 6 from the event loop, 2 from threads
    async def from_loop() -> list[Any]:
        return list(await asyncio.gather(*(pool.ainvoke(("sleep", 0.05)) for _ in range(6))))

    with ThreadPoolExecutor(2) as threads:
        blocked = [threads.submit(pool.invoke, ("sleep", 0.05)) for _ in range(2)]
        spans = asyncio.run(from_loop()) + [f.result(timeout=30) for f in blocked]
    # THEN every one is answered, by both containers, never two at once in one container
    assert len(spans) == 8
    assert {pid for pid, _, _ in spans} == set(pool.pids)
    assert _never_overlapping(spans)


def test_a_containers_exception_is_raised_in_the_caller(pool: ContainerPool) -> None:
    # GIVEN an invocation that fails inside the container
    # WHEN it runs from the loop and from a thread THEN its own error comes back each time
    with pytest.raises(ValueError, match="bad order"):
        asyncio.run(pool.ainvoke(("raise", "bad order")))
    with pytest.raises(ValueError, match="bad order"):
        pool.invoke(("raise", "bad order"))
    # AND the container keeps serving
    assert pool.invoke(("sleep", 0))[0] in pool.pids


def test_a_dead_container_fails_its_invocation_and_the_others_keep_serving(
    pool: ContainerPool,
) -> None:
    # GIVEN a container that dies while running an invocation
    with pytest.raises(ContainerGoneError):
        asyncio.run(pool.ainvoke(("die",)))

    # WHEN more invocations come, from the loop and from threads
    async def after() -> list[Any]:
        return list(await asyncio.gather(*(pool.ainvoke(("sleep", 0.01)) for _ in range(3))))

    spans = [*asyncio.run(after()), pool.invoke(("sleep", 0.01))]
    # THEN the surviving container answers them all
    assert len(pool.pids) == 1
    assert {pid for pid, _, _ in spans} == set(pool.pids)


def test_when_every_container_is_gone_callers_are_refused_not_hung(pool: ContainerPool) -> None:
    # GIVEN both containers dead
    for _ in range(2):
        with pytest.raises(ContainerGoneError):
            pool.invoke(("die",))
    # WHEN another invocation comes THEN it is refused at once
    with pytest.raises(ContainerGoneError, match="every container"):
        pool.invoke(("sleep", 0))
    with pytest.raises(ContainerGoneError, match="every container"):
        asyncio.run(pool.ainvoke(("sleep", 0)))


def test_close_releases_a_thread_waiting_for_a_container() -> None:
    # GIVEN one container busy and a thread waiting for it
    pool = ContainerPool(multiprocessing.get_context("spawn"), 1, worker_main)
    busy = threading.Thread(target=pool.invoke, args=(("sleep", 0.5),))
    busy.start()
    time.sleep(0.1)
    outcome: list[BaseException] = []

    def waiting() -> None:
        try:
            pool.invoke(("sleep", 0))
        except ContainerGoneError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=waiting)
    waiter.start()
    time.sleep(0.1)
    # WHEN the pool is closed THEN the waiting thread is told, not left hanging
    pool.close()
    waiter.join(timeout=15)
    busy.join(timeout=15)
    assert not waiter.is_alive()
    assert outcome


def test_a_failed_broadcast_leaves_no_answer_behind(pool: ContainerPool) -> None:
    # GIVEN a warm-up that fails in every container
    with pytest.raises(ValueError, match="no handler"):
        pool.broadcast(("raise", "no handler"))
    # WHEN the containers are used next THEN each answers its own invocation, not a stale one
    spans = [pool.invoke(("sleep", 0)) for _ in range(4)]
    assert all(isinstance(span, tuple) and len(span) == 3 for span in spans)


def test_a_container_killed_while_idle_is_found_out_and_dropped(pool: ContainerPool) -> None:
    # GIVEN a container killed between invocations (OOM, a signal)
    victim = pool.pids[0]
    os.kill(victim, 9)
    time.sleep(0.3)
    # WHEN invocations come THEN at most one fails with ContainerGoneError, and the rest are
    # answered by the survivor
    outcomes: list[Any] = []
    for _ in range(4):
        try:
            outcomes.append(pool.invoke(("sleep", 0))[0])
        except ContainerGoneError:
            outcomes.append("gone")
    assert outcomes.count("gone") <= 1
    assert victim not in pool.pids
    assert {o for o in outcomes if o != "gone"} == set(pool.pids)
