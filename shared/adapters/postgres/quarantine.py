"""Quarantined execution reports in Postgres (``quarantined_reports``, migration V004)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from shared.adapters.postgres.pool import Database
from shared.domain.report_validation import report_fingerprint
from shared.ports import HeldReport, QuarantinedReport

# The same report held twice is one row; the tracker runs this inside its batch transaction.
INSERT_QUARANTINED = """
INSERT INTO quarantined_reports (fingerprint, report_key, broker_id, broker_order_id,
    child_order_id, order_id, stage, reason, field, message, report)
VALUES (%(fingerprint)s, left(%(report_key)s, 200), %(broker_id)s, left(%(broker_order_id)s, 64),
    %(child_order_id)s, %(order_id)s, %(stage)s, %(reason)s, left(%(field)s, 64), %(message)s,
    %(report)s)
ON CONFLICT (fingerprint) DO NOTHING
RETURNING id
"""
SELECT_RECENT = """
SELECT id, quarantined_at, stage, reason, field, message, report_key, broker_id, child_order_id,
    order_id, report
FROM quarantined_reports
WHERE %(reason)s::text IS NULL OR reason = %(reason)s
ORDER BY quarantined_at DESC, id DESC
LIMIT %(limit)s
"""


def quarantine_params(quarantined: QuarantinedReport) -> dict[str, Any]:
    """Column values of a ``quarantined_reports`` row."""
    report = quarantined.report
    return {
        "fingerprint": report_fingerprint(report),
        "report_key": report.idempotency_key,
        "broker_id": report.broker_id,
        "broker_order_id": report.broker_order_id,
        "child_order_id": quarantined.child_order_id,
        "order_id": quarantined.order_id,
        "stage": quarantined.stage,
        "reason": quarantined.reason,
        "field": quarantined.field,
        "message": quarantined.message,
        "report": Jsonb(report.model_dump(mode="json", by_alias=True)),
    }


class PostgresQuarantineRepository:
    """:class:`shared.ports.QuarantineRepository` over ``quarantined_reports``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, quarantined: QuarantinedReport) -> bool:
        """Hold one report; ``False`` when the same report is already held."""
        with self._db.connection() as conn:
            row = conn.execute(INSERT_QUARANTINED, quarantine_params(quarantined)).fetchone()
        return row is not None

    def list_recent(self, *, limit: int, reason: str | None = None) -> list[HeldReport]:
        """The newest held reports first, optionally only those of ``reason``."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_RECENT, {"limit": limit, "reason": reason}).fetchall()
        return [HeldReport(**row) for row in rows]
