"""Analytics roll-ups, partitions and retention of ``execution_metrics`` (V012's functions).

The roll-up, partition and retention functions are ``SECURITY DEFINER``: the services' role
may run them but can neither delete rows nor create or drop tables itself.
"""

from __future__ import annotations

from datetime import datetime

from shared.adapters.postgres.pool import Database

ROLLED_THROUGH = "SELECT rolled_through FROM execution_rollup_state WHERE name = 'hourly'"
# The index on created_at answers min() per partition; orders and children only count with an
# execution, or on the roll-up that follows it.
EARLIEST = "SELECT min(created_at) AS earliest FROM execution_metrics"


class PostgresRollups:
    """:class:`shared.ports.RollupRepository` over V012's tables and functions."""

    def __init__(self, db: Database, *, statement_timeout_ms: int = 240_000) -> None:
        self._db = db
        # The job's statements read hours of raw rows: far longer than a request's timeout.
        self._timeout = f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}"

    def rolled_through(self) -> datetime | None:
        """The roll-up watermark: every hour before it is rolled up (``None`` before any run)."""
        with self._db.connection() as conn:
            row = conn.execute(ROLLED_THROUGH).fetchone()
        return None if row is None else row["rolled_through"]

    def earliest_activity(self) -> datetime | None:
        """When the oldest stored execution happened (``None`` when there is none)."""
        with self._db.connection() as conn:
            row = conn.execute(EARLIEST).fetchone()
        return None if row is None else row["earliest"]

    def roll_hours(self, start: datetime, end: datetime) -> int:
        """Roll ``[start, end)`` again from the raw rows; the number of hourly rows written."""
        with self._db.connection() as conn:
            conn.execute(self._timeout)
            row = conn.execute(
                "SELECT rollup_execution_hours(%s, %s) AS n", (start, end)
            ).fetchone()
        return 0 if row is None else int(row["n"])

    def ensure_partitions(self, start: datetime, end: datetime) -> int:
        """Create the missing monthly partitions of ``[start, end)``; how many were created."""
        with self._db.connection() as conn:
            conn.execute(self._timeout)
            row = conn.execute(
                "SELECT ensure_execution_partitions(%s, %s) AS n", (start, end)
            ).fetchone()
        return 0 if row is None else int(row["n"])

    def drop_partitions_before(self, cutoff: datetime) -> int:
        """Drop the partitions wholly before ``cutoff``; how many were dropped."""
        with self._db.connection() as conn:
            conn.execute(self._timeout)
            row = conn.execute(
                "SELECT drop_execution_partitions_before(%s) AS n", (cutoff,)
            ).fetchone()
        return 0 if row is None else int(row["n"])
