"""The transactional outbox in Postgres: events written with the state change, sent later."""

from __future__ import annotations

from collections.abc import Sequence

from shared.adapters.postgres.pool import Database
from shared.domain.orders import DomainEvent
from shared.ports import OutboxEntry

# SKIP LOCKED lets several relays (or a relay and a route_order invocation) drain the outbox
# concurrently without sending the same event twice in the same pass.
SELECT_PENDING = """
SELECT id, event_id, source, detail_type, detail, attempts
FROM event_outbox WHERE published_at IS NULL
ORDER BY id LIMIT %s
FOR UPDATE SKIP LOCKED
"""
MARK_PUBLISHED = "UPDATE event_outbox SET published_at = now() WHERE id = ANY(%s)"
MARK_FAILED = """
UPDATE event_outbox SET attempts = attempts + 1, last_error = left(%s, 1000) WHERE id = ANY(%s)
"""


class PostgresOutbox:
    """:class:`shared.ports.Outbox` over ``event_outbox``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def pending(self, limit: int) -> list[OutboxEntry]:
        """The oldest unpublished events."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_PENDING, (limit,)).fetchall()
        return [
            OutboxEntry(
                outbox_id=r["id"],
                attempts=r["attempts"],
                event=DomainEvent(
                    event_id=r["event_id"],
                    source=r["source"],
                    detail_type=r["detail_type"],
                    detail=r["detail"],
                ),
            )
            for r in rows
        ]

    def pending_for_events(self, events: Sequence[DomainEvent]) -> list[OutboxEntry]:
        """Outbox entries of specific events that are still unpublished."""
        ids = [e.event_id for e in events]
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT id, event_id, attempts FROM event_outbox "
                "WHERE event_id = ANY(%s) AND published_at IS NULL",
                (ids,),
            ).fetchall()
        by_id = {e.event_id: e for e in events}
        return [
            OutboxEntry(outbox_id=r["id"], attempts=r["attempts"], event=by_id[r["event_id"]])
            for r in rows
        ]

    def mark_published(self, outbox_ids: Sequence[int]) -> None:
        """Record successful publication."""
        if outbox_ids:
            with self._db.connection() as conn:
                conn.execute(MARK_PUBLISHED, (list(outbox_ids),))

    def mark_failed(self, outbox_ids: Sequence[int], error: str) -> None:
        """Count a failed attempt; the events stay pending for the relay."""
        if outbox_ids:
            with self._db.connection() as conn:
                conn.execute(MARK_FAILED, (error, list(outbox_ids)))
