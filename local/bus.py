"""The local event bus: EventBridge ``PutEvents`` in, ``track_execution`` invocations out.

The production :class:`~shared.adapters.eventbridge.EventBridgePublisher` keeps running
unchanged: boto3 posts ``PutEvents`` (JSON 1.1) to the local HTTP server, which hands the entries
to :meth:`LocalEventBus.put_events`. Entries matching the rules the CDK stack creates (both from
:data:`shared.domain.contracts.TRACKED_EVENTS`) are turned into EventBridge-shaped events and
delivered, one at a time and in arrival order, by a worker thread, with a few attempts like
EventBridge's retry policy and a dead-letter log after the last one. Other entries are accepted
and dropped, as EventBridge drops events no rule matches.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.contracts import TRACKED_EVENTS

logger = logging.getLogger("order_router.local.bus")

ACCOUNT = "123456789012"
MAX_ENTRIES = 10
"""PutEvents accepts at most 10 entries per call."""

Deliver = Callable[[dict[str, Any]], object]


@dataclass
class BusStats:
    """What the bus did since it started (read by tests and the shutdown summary)."""

    accepted: int = 0
    delivered: int = 0
    unmatched: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dead_letters: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))


class LocalEventBus:
    """An in-process EventBridge bus with one rule target: ``track_execution``.

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
    """

    def __init__(
        self,
        bus_name: str,
        deliver: Deliver,
        *,
        region: str = "ap-south-1",
        attempts: int = 3,
        retry_delay_s: float = 0.2,
    ) -> None:
        self._bus_name = bus_name
        self._deliver = deliver
        self._region = region
        self._attempts = max(1, attempts)
        self._retry_delay_s = retry_delay_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
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
            self.stats.accepted += 1
            if (event["source"], event["detail-type"]) in TRACKED_EVENTS:
                self._queue.put(event)
            else:
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

    def start(self) -> None:
        """Start the delivery thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="event-bus", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)
        self._thread = None

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._deliver_with_retries(event)

    def _deliver_with_retries(self, event: dict[str, Any]) -> None:
        delay = self._retry_delay_s
        for attempt in range(1, self._attempts + 1):
            try:
                self._deliver(event)
            except Exception as exc:  # any target failure is a failed attempt, as in AWS
                if attempt == self._attempts:
                    self._dead_letter(event, exc)
                    return
                self.stats.retried += 1
                logger.warning(
                    "delivery of %s %s failed (attempt %d of %d): %s",
                    event["detail-type"],
                    event["id"],
                    attempt,
                    self._attempts,
                    exc,
                )
                time.sleep(delay)
                delay *= 2
            else:
                self.stats.delivered += 1
                return

    def _dead_letter(self, event: dict[str, Any], error: BaseException) -> None:
        self.stats.dead_lettered += 1
        self.stats.dead_letters.append({"event": event, "error": repr(error)})
        logger.error(
            "dead-lettered %s %s after %d attempts: %r",
            event["detail-type"],
            event["id"],
            self._attempts,
            error,
        )
