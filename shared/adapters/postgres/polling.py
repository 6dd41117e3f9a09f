"""Children that no terminal report settled, taken for polling (``QuietChildren``)."""

from __future__ import annotations

from shared.adapters.postgres.orders import CHILD_COLUMNS, child_from_row
from shared.adapters.postgres.pool import Database
from shared.domain.orders import ChildOrder

# SKIP LOCKED: a child being tracked (its row locked by a report) is left for the next run, and
# two pollers at once take different children. Stamping polled_at in the same statement moves
# each child to the back of the queue, so a broker that never answers cannot starve the others.
TAKE_QUIET = f"""
WITH picked AS (
    SELECT child_order_id FROM child_orders
    WHERE status IN ('PLACED', 'PARTIALLY_FILLED', 'TIMED_OUT')
      AND placed_at < now() - make_interval(secs => %(older_than_s)s)
      AND placed_at > now() - make_interval(secs => %(max_age_s)s)
      AND (polled_at IS NULL OR polled_at < now() - make_interval(secs => %(older_than_s)s))
    ORDER BY polled_at NULLS FIRST, placed_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), stamped AS (
    UPDATE child_orders c SET polled_at = now()
    FROM picked WHERE c.child_order_id = picked.child_order_id
    RETURNING c.*
)
SELECT {CHILD_COLUMNS} FROM stamped c JOIN orders o USING (order_id)
ORDER BY c.polled_at, c.placed_at
"""


class PostgresQuietChildren:
    """:class:`shared.ports.QuietChildren` over ``child_orders``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def take_quiet(self, *, older_than_s: float, max_age_s: float, limit: int) -> list[ChildOrder]:
        """Children to poll now, stamped as polled (see :class:`~shared.ports.QuietChildren`)."""
        params = {"older_than_s": older_than_s, "max_age_s": max_age_s, "limit": limit}
        with self._db.connection() as conn:
            rows = conn.execute(TAKE_QUIET, params).fetchall()
        return [child_from_row(row) for row in rows]
