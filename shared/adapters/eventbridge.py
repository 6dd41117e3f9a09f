"""Publishing domain events to Amazon EventBridge."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.domain.contracts import DomainEvent

MAX_ENTRIES_PER_CALL = 10  # the PutEvents limit


class EventBridgePublisher:
    """:class:`shared.ports.EventPublisher` over ``PutEvents``, at most 10 entries a call.

    A failed call or a failed entry is returned to the caller, never raised: the events stay in
    the outbox and the relay sends them later, so a bus outage never fails an order.
    """

    def __init__(self, client_factory: Callable[[], Any], bus_name: str) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._bus_name = bus_name

    def _entries(self, events: Sequence[DomainEvent]) -> list[dict[str, str]]:
        return [
            {
                "Source": e.source,
                "DetailType": e.detail_type,
                "Detail": json.dumps(e.detail, separators=(",", ":"), default=str),
                "EventBusName": self._bus_name,
            }
            for e in events
        ]

    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """Send ``events``; return those EventBridge did not accept."""
        if self._client is None:
            self._client = self._client_factory()
        failed: list[DomainEvent] = []
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            chunk = list(events[start : start + MAX_ENTRIES_PER_CALL])
            try:
                response = self._client.put_events(Entries=self._entries(chunk))
            except (BotoCoreError, ClientError):
                failed.extend(chunk)
                continue
            if response.get("FailedEntryCount", 0):
                failed.extend(
                    event
                    for event, entry in zip(chunk, response["Entries"], strict=True)
                    if "ErrorCode" in entry
                )
        return failed
