"""The analytics roll-up job: hourly roll-ups, partitions ahead, retention (docs/data-layer.md).

Run on a schedule (every 15 minutes in AWS, on a timer in local mode). Each run:

1. rolls every closed hour after the watermark (and the last ``recheck_hours`` before it again,
   which folds in executions stored after their hour was rolled) from the raw rows, replacing
   what was there, so running it twice gives the same rows;
2. creates the monthly partitions of ``execution_metrics`` up to ``partition_ahead_days`` ahead
   (a row for a month without one waits in the default partition and is moved then);
3. drops the raw partitions older than ``retention_days``, but never one the roll-ups have not
   covered yet. Roll-ups are never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.analytics import HOUR, rollup_range
from shared.ports import RollupRepository


@dataclass(frozen=True, slots=True)
class RollupPolicy:
    """The job's settings (``ROUTER_ROLLUP_*``, ``ROUTER_PARTITION_AHEAD_DAYS``...)."""

    settle: timedelta = timedelta(minutes=5)
    recheck_hours: int = 2
    max_hours: int = 744
    partition_ahead: timedelta = timedelta(days=62)
    retention: timedelta = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class RollupReport:
    """What one run did (the handler's metrics)."""

    rolled_from: datetime | None
    rolled_to: datetime | None
    hourly_rows: int
    partitions_created: int
    partitions_dropped: int


class RollupJob:
    """One run of the roll-up job over a :class:`shared.ports.RollupRepository`."""

    def __init__(
        self,
        repository: RollupRepository,
        *,
        clock: Callable[[], datetime],
        policy: RollupPolicy,
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._policy = policy

    def run(self) -> RollupReport:
        """Roll closed hours, create partitions ahead, apply retention."""
        now = self._clock()
        policy = self._policy
        # Partitions first: rows of this month must never wait in the default partition.
        created = self._repository.ensure_partitions(now, now + policy.partition_ahead)
        watermark = self._repository.rolled_through()
        earliest = self._repository.earliest_activity() if watermark is None else None
        hours = rollup_range(
            now,
            watermark,
            earliest,
            settle=policy.settle,
            recheck_hours=policy.recheck_hours,
            max_hours=policy.max_hours,
        )
        rows = 0
        if hours is not None:
            rows = self._repository.roll_hours(*hours)
            watermark = self._repository.rolled_through()
        dropped = 0
        if watermark is not None:
            # Raw rows an hour the roll-ups may still re-read are kept, whatever the retention.
            cutoff = min(now - policy.retention, watermark - policy.recheck_hours * HOUR)
            dropped = self._repository.drop_partitions_before(cutoff)
        return RollupReport(
            rolled_from=None if hours is None else hours[0],
            rolled_to=None if hours is None else hours[1],
            hourly_rows=rows,
            partitions_created=created,
            partitions_dropped=dropped,
        )
