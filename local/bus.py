"""The local event bus: EventBridge ``PutEvents`` in, ``track_execution`` invocations out.

The production :class:`~shared.adapters.eventbridge.EventBridgePublisher` keeps running
unchanged: boto3 posts ``PutEvents`` (JSON 1.1) to the local HTTP server, which hands the entries
to :meth:`LocalEventBus.put_events`. Entries matching the rules the CDK stack creates (both from
:data:`shared.domain.contracts.TRACKED_EVENTS`) are turned into EventBridge-shaped events and
delivered with a few attempts like EventBridge's retry policy and a dead-letter log after the
last one. Other entries are accepted and dropped, as EventBridge drops events no rule matches.

Delivery is the MSK path's when the runtime gives a batch target (``run --workers N``): events
go to ``consumers`` partitions by their order id (an order's events stay in order, as on a keyed
Kafka topic), and each partition's thread hands what is queued, up to ``batch_size`` events, to
one ``track_execution`` invocation shaped like an MSK event; ``N`` partitions keep ``N`` tracker
containers busy. A record the handler reports in ``batchItemFailures`` is retried alone.

Stopping drains the queues for up to ``timeout_s``; whatever is still queued then (a target that
is down, a backlog bigger than the drain) is written to the spool file and queued again by the
next :meth:`LocalEventBus.start`, so stopping a run never loses an accepted event. A batch still
running when the drain ends is spooled too: the tracker stores a report once, whatever the
deliveries (at least once, like MSK).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.domain.contracts import TRACKED_EVENTS

logger = logging.getLogger("order_router.local.bus")

ACCOUNT = "123456789012"
MAX_ENTRIES = 10
"""PutEvents accepts at most 10 entries per call."""

TOPIC = "order-executions"
"""The Kafka topic of the MSK-shaped batches (infra: the tracker's MSK event source)."""

Deliver = Callable[[dict[str, Any]], object]
DeliverBatch = Callable[[Sequence[dict[str, Any]]], set[int]]
"""Invokes the target with a batch; returns the positions of the events that failed (raising
fails them all)."""


@dataclass
class BusStats:
    """What the bus did since it started (read by tests and the shutdown summary)."""

    accepted: int = 0
    delivered: int = 0
    unmatched: int = 0
    retried: int = 0
    dead_lettered: int = 0
    batches: int = 0
    spooled: int = 0
    """Events written to the spool file at the last stop (delivered by the next start)."""
    restored: int = 0
    """Events read back from the spool file at start."""
    dead_letters: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))


class LocalEventBus:
    """An in-process event bus with one target: ``track_execution`` (one event, or MSK batches).

    Parameters
    ----------
    bus_name
        The bus the publisher writes to (``Settings.event_bus_name``); entries for another bus
        are refused per entry with ``ResourceNotFoundException`` as EventBridge does.
    deliver
        Invokes the target with one event (the ``track_execution`` Lambda handler); an
        exception is a failed attempt.
    region
        Written into each event's ``region``.
    attempts
        Deliveries tried per event before it is dead-lettered.
    retry_delay_s
        Pause before the second attempt; doubled for each further one.
    deliver_batch
        Invokes the target with a batch (see :func:`msk_target`); ``None`` delivers one event
        per invocation through ``deliver``.
    consumers
        Partitions, each with a delivery thread (the runtime's tracker containers).
    batch_size
        Most events per batch (the MSK event source's batch size).
    spool
        Where events still queued at stop are kept for the next start (``None``: not kept).
    """

    def __init__(
        self,
        bus_name: str,
        deliver: Deliver,
        *,
        region: str = "ap-south-1",
        attempts: int = 3,
        retry_delay_s: float = 0.2,
        deliver_batch: DeliverBatch | None = None,
        consumers: int = 1,
        batch_size: int = 100,
        spool: Path | None = None,
    ) -> None:
        self._bus_name = bus_name
        self._deliver = deliver
        self._deliver_batch = deliver_batch
        self._region = region
        self._attempts = max(1, attempts)
        self._retry_delay_s = retry_delay_s
        self._batch_size = max(1, batch_size) if deliver_batch is not None else 1
        self._spool = spool
        self._queues: list[queue.Queue[dict[str, Any] | None]] = [
            queue.Queue() for _ in range(max(1, consumers))
        ]
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[int, list[dict[str, Any]]] = {}
        self._abort = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self.stats = BusStats()

    # -- PutEvents ---------------------------------------------------------------------------

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Accept a ``PutEvents`` call; never blocks on delivery.

        Parameters
        ----------
        entries
            The request's ``Entries`` (``Source``, ``DetailType``, ``Detail``, ``EventBusName``,
            optional ``Resources`` and ``Time``).

        Returns
        -------
        dict
            The ``PutEvents`` response: ``FailedEntryCount`` and one result per entry (an
            ``EventId``, or ``ErrorCode``/``ErrorMessage``).
        """
        results: list[dict[str, str]] = []
        for entry in entries:
            error = self._invalid(entry)
            if error is not None:
                results.append({"ErrorCode": error[0], "ErrorMessage": error[1]})
                continue
            event = self._event(entry)
            results.append({"EventId": event["id"]})
            with self._lock:
                self.stats.accepted += 1
            if (event["source"], event["detail-type"]) in TRACKED_EVENTS:
                self._enqueue(event)
            else:
                with self._lock:
                    self.stats.unmatched += 1
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def _invalid(self, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        for name in ("Source", "DetailType", "Detail"):
            if not isinstance(entry.get(name), str) or not entry[name]:
                return "InvalidArgument", f"Parameter {name} is not valid."
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            return "MalformedDetail", "Detail is malformed."
        if not isinstance(detail, dict):
            return "MalformedDetail", "Detail is malformed."
        bus = entry.get("EventBusName") or "default"
        if bus.rsplit("/", 1)[-1] != self._bus_name:
            return "ResourceNotFoundException", f"Event bus {bus} does not exist."
        return None

    def _event(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        # The shape EventBridge hands to a Lambda target.
        at = entry.get("Time")
        moment = at if isinstance(at, str) else datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": ACCOUNT,
            "time": moment,
            "region": self._region,
            "resources": list(entry.get("Resources") or []),
            "detail": json.loads(entry["Detail"]),
        }

    # -- delivery ----------------------------------------------------------------------------

    def _enqueue(self, event: dict[str, Any]) -> None:
        # An order's events share a partition, so they are delivered in order (a keyed topic).
        key = str(event.get("detail", {}).get("order_id") or event["id"])
        self._queues[zlib.crc32(key.encode()) % len(self._queues)].put(event)

    def start(self) -> None:
        """Queue what the last stop spooled, then start one delivery thread per partition."""
        if self._threads:
            return
        self._abort.clear()
        self._closed = False
        self.stats.spooled = 0
        # A restarted bus: drop the last stop's wake-ups, keep anything put since.
        kept = [event for partition in self._queues for event in _drain(partition)]
        for event in [*self._read_spool(), *kept]:
            self._enqueue(event)
        for index, partition in enumerate(self._queues):
            thread = threading.Thread(
                target=self._run, args=(index, partition), name=f"event-bus-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for up to ``timeout_s``, then spool the rest and stop."""
        if not self._threads:
            return
        for partition in self._queues:
            partition.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        # Threads still busy finish their current invocation and take nothing more; what they
        # hold and what is queued is spooled, under the lock they register a batch with.
        self._abort.set()
        with self._lock:
            self._closed = True
            left = [event for batch in self._in_flight.values() for event in batch]
            self._in_flight.clear()
            for partition in self._queues:
                left.extend(_drain(partition))
                partition.put(None)  # wakes a thread blocked on an empty partition
            self._write_spool(left)
        self._threads = []

    def pending(self) -> int:
        """Events queued and not yet taken by a delivery thread."""
        return sum(partition.qsize() for partition in self._queues)

    def _run(self, index: int, partition: queue.Queue[dict[str, Any] | None]) -> None:
        while not self._abort.is_set():
            event = partition.get()
            if event is None:
                return
            batch = [event]
            stop = False
            while len(batch) < self._batch_size:
                try:
                    more = partition.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            with self._lock:
                if self._closed:
                    # Taken after the drain ended: keep it for the next start.
                    self._write_spool(batch)
                    return
                self._in_flight[index] = batch
            self._deliver_with_retries(batch)
            with self._lock:
                self._in_flight.pop(index, None)
            if stop:
                return

    def _deliver_with_retries(self, batch: list[dict[str, Any]]) -> None:
        delay = self._retry_delay_s
        for attempt in range(1, self._attempts + 1):
            failed, error = self._attempt(batch)
            with self._lock:
                self.stats.delivered += len(batch) - len(failed)
                self.stats.batches += 1
            if not failed:
                return
            batch = [batch[i] for i in sorted(failed)]
            if self._abort.is_set():
                return  # stop spooled this batch: it is retried by the next start
            if attempt == self._attempts:
                for event in batch:
                    self._dead_letter(event, error)
                return
            with self._lock:
                self.stats.retried += len(batch)
            logger.warning(
                "delivery of %d event(s) failed (attempt %d of %d): %s",
                len(batch),
                attempt,
                self._attempts,
                error,
            )
            time.sleep(delay)
            delay *= 2

    def _attempt(self, batch: list[dict[str, Any]]) -> tuple[set[int], BaseException]:
        # Any target failure is a failed attempt, as in AWS.
        try:
            if self._deliver_batch is None:
                [event] = batch
                self._deliver(event)
                return set(), RuntimeError("delivered")
            failed = self._deliver_batch(batch)
            return failed, RuntimeError("reported in batchItemFailures")
        except Exception as exc:
            return set(range(len(batch))), exc

    def _dead_letter(self, event: dict[str, Any], error: BaseException) -> None:
        with self._lock:
            self.stats.dead_lettered += 1
            self.stats.dead_letters.append({"event": event, "error": repr(error)})
        logger.error(
            "dead-lettered %s %s after %d attempts: %r",
            event["detail-type"],
            event["id"],
            self._attempts,
            error,
        )

    # -- spool -------------------------------------------------------------------------------

    def _read_spool(self) -> list[dict[str, Any]]:
        if self._spool is None or not self._spool.exists():
            return []
        events = [json.loads(line) for line in self._spool.read_text().splitlines() if line]
        self._spool.unlink()
        self.stats.restored += len(events)
        if events:
            logger.info("queued %d event(s) spooled by the last stop", len(events))
        return events

    def _write_spool(self, events: list[dict[str, Any]]) -> None:
        # Called with the lock held.
        self.stats.spooled += len(events)
        if not events:
            return
        if self._spool is None:
            for event in events:
                self.stats.dead_lettered += 1
                self.stats.dead_letters.append(
                    {"event": event, "error": "still queued when the bus stopped"}
                )
            logger.error("dropped %d event(s) still queued at stop (no spool)", len(events))
            return
        with self._spool.open("a") as spool:
            spool.writelines(json.dumps(e, default=str) + "\n" for e in events)
            spool.flush()
            os.fsync(spool.fileno())
        logger.warning("spooled %d undelivered event(s) to %s", len(events), self._spool)


def _drain(partition: queue.Queue[dict[str, Any] | None]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        try:
            event = partition.get_nowait()
        except queue.Empty:
            return events
        if event is not None:
            events.append(event)


def msk_target(invoke: Callable[[dict[str, Any]], Any]) -> DeliverBatch:
    """A batch target invoking ``track_execution`` with an MSK-shaped event, as MSK does.

    Each event is one record of :data:`TOPIC`'s partition 0 (its offset is its position),
    its value the JSON envelope the handler reads (``detail-type``, ``source``, ``detail``).

    Parameters
    ----------
    invoke
        Runs ``track_execution`` with an event and returns its response.

    Returns
    -------
    DeliverBatch
        Delivers a batch; the positions the response lists in ``batchItemFailures``.
    """

    def deliver(events: Sequence[dict[str, Any]]) -> set[int]:
        records: list[dict[str, Any]] = [
            {
                "topic": TOPIC,
                "partition": 0,
                "offset": offset,
                "timestamp": int(time.time() * 1000),
                "timestampType": "CREATE_TIME",
                "key": None,
                "value": base64.b64encode(
                    json.dumps(
                        {k: e[k] for k in ("detail-type", "source", "detail")}, default=str
                    ).encode()
                ).decode(),
                "headers": [],
            }
            for offset, e in enumerate(events)
        ]
        response = invoke({"eventSource": "aws:kafka", "records": {f"{TOPIC}-0": records}})
        failures = (response or {}).get("batchItemFailures") or []
        return {int(f["itemIdentifier"]["offset"]) for f in failures}

    return deliver
