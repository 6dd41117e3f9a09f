"""The local event bus: partitions of MSK-shaped batches, retries, and a stop that loses nothing.

Real threads, a real spool file; the target is a plain function (the handler's tests cover it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from local.bus import LocalEventBus, msk_target
from shared.domain.contracts import DetailType, EventSource

BUS = "order-router"


def entry(order_id: str, n: int = 0) -> dict[str, Any]:
    return {
        "Source": EventSource.BROKERS,
        "DetailType": DetailType.EXECUTION_REPORTED,
        "Detail": json.dumps({"order_id": order_id, "n": n}),
        "EventBusName": BUS,
    }


def put(bus: LocalEventBus, entries: list[dict[str, Any]]) -> None:
    for start in range(0, len(entries), 10):
        assert bus.put_events(entries[start : start + 10])["FailedEntryCount"] == 0


def until(check: Any, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


class Recorder:
    """A batch target that records what it got, per thread, and can be held or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.release.set()
        self.fail_once: set[int] = set()
        self.lock = threading.Lock()

    def __call__(self, events: Sequence[dict[str, Any]]) -> set[int]:
        self.release.wait()
        with self.lock:
            self.batches.append(list(events))
            self.threads.add(threading.current_thread().name)
            failed = {i for i, e in enumerate(events) if e["detail"]["n"] in self.fail_once}
            self.fail_once -= {events[i]["detail"]["n"] for i in failed}
        return failed

    def delivered(self) -> list[int]:
        with self.lock:
            return [e["detail"]["n"] for b in self.batches for e in b]


def batched_bus(
    target: Recorder, *, consumers: int = 2, spool: Path | None = None
) -> LocalEventBus:
    return LocalEventBus(
        BUS,
        lambda _: None,
        deliver_batch=target,
        consumers=consumers,
        batch_size=100,
        retry_delay_s=0.01,
        spool=spool,
    )


def test_events_are_batched_over_partitions_and_each_order_keeps_its_order() -> None:
    # GIVEN a bus with 2 partitions, its target held while 300 events of 30 orders queue up
    target = Recorder()
    target.release.clear()
    bus = batched_bus(target)
    bus.start()
    put(bus, [entry(f"ord-{n % 30}", n) for n in range(300)])
    # WHEN the target is released
    target.release.set()
    until(lambda: bus.stats.delivered == 300)
    bus.stop()
    # THEN both partitions delivered, in batches of at most 100, every event once
    assert sorted(target.delivered()) == list(range(300))
    assert target.threads == {"event-bus-0", "event-bus-1"}
    assert all(len(b) <= 100 for b in target.batches)
    assert len(target.batches) < 300
    # AND each order's events arrived in the order they were put
    per_order: dict[str, list[int]] = {}
    for batch in target.batches:
        for event in batch:
            per_order.setdefault(event["detail"]["order_id"], []).append(event["detail"]["n"])
    assert all(ns == sorted(ns) for ns in per_order.values())


def test_a_record_the_handler_fails_is_retried_alone() -> None:
    # GIVEN a target that fails event 7 once (a batch item failure)
    target = Recorder()
    target.fail_once = {7}
    bus = batched_bus(target, consumers=1)
    bus.start()
    # WHEN 10 events are delivered
    put(bus, [entry("ord-1", n) for n in range(10)])
    until(lambda: bus.stats.delivered == 10)
    bus.stop()
    # THEN event 7 was sent again on its own, the others once, and nothing was dead-lettered
    numbers = [[e["detail"]["n"] for e in batch] for batch in target.batches]
    assert [7] in numbers
    assert sorted(target.delivered()) == [*range(7), 7, *range(7, 10)]
    assert bus.stats.retried == 1
    assert bus.stats.dead_lettered == 0


def test_a_batch_whose_invocation_fails_every_time_is_dead_lettered() -> None:
    # GIVEN a target that always raises (the handler's "all records failed")
    def broken(events: Sequence[dict[str, Any]]) -> set[int]:
        raise RuntimeError("postgres unavailable")

    bus = LocalEventBus(BUS, lambda _: None, deliver_batch=broken, retry_delay_s=0.01)
    bus.start()
    # WHEN 3 events are put
    put(bus, [entry("ord-1", n) for n in range(3)])
    until(lambda: bus.stats.dead_lettered == 3)
    bus.stop()
    # THEN each is dead-lettered with the error after the attempts
    assert bus.stats.delivered == 0
    assert "postgres unavailable" in bus.stats.dead_letters[0]["error"]


def test_a_stop_spools_what_it_could_not_deliver_and_the_next_start_delivers_it(
    tmp_path: Path,
) -> None:
    # GIVEN a bus whose target hangs on its first batch, with 250 events put
    spool = tmp_path / "spool.jsonl"
    target = Recorder()
    target.release.clear()
    bus = batched_bus(target, spool=spool)
    bus.start()
    put(bus, [entry(f"ord-{n % 7}", n) for n in range(250)])
    # WHEN the run stops with a short drain
    bus.stop(timeout_s=0.2)
    # THEN nothing is dead-lettered: every event not delivered is in the spool file
    assert bus.stats.dead_lettered == 0
    spooled = [json.loads(line)["detail"]["n"] for line in spool.read_text().splitlines()]
    assert bus.stats.spooled == len(spooled) == 250
    # AND the next start (the hung invocation gone) delivers all of them, and the file is gone
    target.release.set()
    again = Recorder()
    restarted = batched_bus(again, spool=spool)
    restarted.start()
    until(lambda: restarted.stats.delivered == 250)
    restarted.stop()
    assert sorted(again.delivered()) == list(range(250))
    assert restarted.stats.restored == 250
    assert not spool.exists()


def test_a_stop_that_drains_in_time_spools_nothing(tmp_path: Path) -> None:
    # GIVEN a quick target and 120 queued events
    spool = tmp_path / "spool.jsonl"
    target = Recorder()
    bus = batched_bus(target, spool=spool)
    bus.start()
    put(bus, [entry(f"ord-{n}", n) for n in range(120)])
    # WHEN the run stops
    bus.stop(timeout_s=5.0)
    # THEN everything was delivered before it ended, and there is no spool
    assert sorted(target.delivered()) == list(range(120))
    assert bus.stats.spooled == 0
    assert not spool.exists()


def test_without_a_spool_what_is_left_at_stop_is_dead_lettered_not_silently_dropped() -> None:
    # GIVEN a hanging target and no spool file
    target = Recorder()
    target.release.clear()
    bus = batched_bus(target, consumers=1)
    bus.start()
    put(bus, [entry("ord-1", n) for n in range(5)])
    # WHEN the run stops
    bus.stop(timeout_s=0.1)
    target.release.set()
    # THEN all five are counted as dead letters, with the reason
    assert bus.stats.dead_lettered == 5
    assert "still queued" in bus.stats.dead_letters[0]["error"]


@pytest.mark.parametrize("failed_offsets", [[], [3], [0, 4]])
def test_msk_target_shapes_an_msk_event_and_reads_its_batch_item_failures(
    failed_offsets: list[int],
) -> None:
    # GIVEN a handler stub answering batchItemFailures for some offsets
    seen: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {
            "batchItemFailures": [
                {"itemIdentifier": {"partition": "order-executions-0", "offset": o}}
                for o in failed_offsets
            ]
        }

    events = [
        {"detail-type": "ExecutionReported", "source": "s", "detail": {"n": n}, "id": str(n)}
        for n in range(5)
    ]
    # WHEN a batch is delivered through msk_target
    failed = msk_target(invoke)(events)
    # THEN the event is Kafka-shaped, one record per event, and the failures map back
    [event] = seen
    assert event["eventSource"] == "aws:kafka"
    [records] = event["records"].values()
    assert [r["offset"] for r in records] == list(range(5))
    assert failed == set(failed_offsets)


def test_a_bus_stopped_and_started_again_delivers_again(tmp_path: Path) -> None:
    # GIVEN a bus that was started, stopped with events spooled, and started again
    target = Recorder()
    target.release.clear()
    bus = batched_bus(target, spool=tmp_path / "spool.jsonl")
    bus.start()
    put(bus, [entry("ord-1", n) for n in range(3)])
    bus.stop(timeout_s=0.1)
    target.release.set()
    bus.start()
    # WHEN more events are put
    put(bus, [entry("ord-2", n) for n in range(3, 6)])
    until(lambda: len(set(target.delivered())) == 6)
    bus.stop()
    # THEN the spooled ones and the new ones are all delivered, none lost to a stale wake-up
    assert set(target.delivered()) == set(range(6))
