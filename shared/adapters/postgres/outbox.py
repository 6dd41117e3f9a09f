"""The transactional outbox in Postgres: events written with the state change, sent later."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.adapters.postgres.pool import Database
from shared.domain.contracts import DomainEvent

# SKIP LOCKED lets several relays drain the outbox at once without sending an event twice;
# the age filter leaves fresh events to the invocation that wrote them, which publishes them
# right after its commit.
SELECT_PENDING = """
SELECT id, event_id, source, detail_type, detail
FROM event_outbox
WHERE published_at IS NULL AND created_at < now() - make_interval(secs => %(min_age_s)s)
ORDER BY id LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
MARK_PUBLISHED = "UPDATE event_outbox SET published_at = now() WHERE event_id = ANY(%s)"
MARK_FAILED = """
UPDATE event_outbox SET attempts = attempts + 1, last_error = left(%s, 1000)
WHERE event_id = ANY(%s)
"""


class PostgresOutbox:
    """:class:`shared.ports.Outbox` over ``event_outbox``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def relay(
        self,
        publish: Callable[[Sequence[DomainEvent]], list[DomainEvent]],
        *,
        limit: int = 100,
        min_age_s: float = 10.0,
    ) -> tuple[int, int]:
        """Publish the oldest pending events and record the outcome, holding their row locks.

        Parameters
        ----------
        publish
            Sends events and returns those that failed.
        limit
            Most events handled in one call.
        min_age_s
            Leave events younger than this to the writer that publishes them after commit.

        Returns
        -------
        tuple[int, int]
            How many events were published and how many failed.
        """
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_PENDING, {"limit": limit, "min_age_s": min_age_s}).fetchall()
            events: list[DomainEvent] = []
            unreadable = 0
            for r in rows:
                try:
                    events.append(
                        DomainEvent.from_wire(
                            event_id=r["event_id"],
                            source=r["source"],
                            detail_type=r["detail_type"],
                            detail=r["detail"],
                        )
                    )
                except (ValueError, KeyError) as exc:
                    # A row no contract reads (written by another schema version) stays in
                    # the outbox with its reason; the rest of the batch is still sent.
                    unreadable += 1
                    conn.execute(MARK_FAILED, (f"unreadable: {exc}", [r["event_id"]]))
            failed = publish(events) if events else []
            failed_ids = {e.event_id for e in failed}
            published = [e.event_id for e in events if e.event_id not in failed_ids]
            if published:
                conn.execute(MARK_PUBLISHED, (published,))
            if failed_ids:
                conn.execute(MARK_FAILED, ("publish failed", list(failed_ids)))
        return len(published), len(failed_ids) + unreadable

    def add(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """Store events on their own; return those that were new (a repeated id is a no-op)."""
        added = []
        with self._db.connection() as conn:
            for event in events:
                row = conn.execute(
                    "INSERT INTO event_outbox (event_id, source, detail_type, detail) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING id",
                    (event.event_id, event.source, event.detail_type, Jsonb(event.detail)),
                ).fetchone()
                if row is not None:
                    added.append(event)
        return added

    def mark_published(self, event_ids: Sequence[UUID]) -> None:
        """Record that these events reached the bus."""
        if event_ids:
            with self._db.connection() as conn:
                conn.execute(MARK_PUBLISHED, (list(event_ids),))

    def mark_failed(self, event_ids: Sequence[UUID], error: str) -> None:
        """Count a failed attempt; the events stay pending for the relay."""
        if event_ids:
            with self._db.connection() as conn:
                conn.execute(MARK_FAILED, (error, list(event_ids)))
