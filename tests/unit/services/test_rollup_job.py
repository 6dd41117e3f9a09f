"""RollupJob's decisions (ranges, partitions ahead, retention cutoff) over a fake repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.services.rollup import RollupJob, RollupPolicy

NOW = datetime(2026, 12, 1, 5, 19, tzinfo=UTC)


class FakeRollups:
    """Records every call; rolling moves the watermark like the SQL function does."""

    def __init__(self, rolled_through: datetime | None, earliest: datetime | None) -> None:
        self.watermark = rolled_through
        self.earliest = earliest
        self.calls: list[tuple[str, tuple[datetime, ...]]] = []

    def rolled_through(self) -> datetime | None:
        return self.watermark

    def earliest_activity(self) -> datetime | None:
        return self.earliest

    def roll_hours(self, start: datetime, end: datetime) -> int:
        self.calls.append(("roll", (start, end)))
        if self.watermark is None or start <= self.watermark < end:
            self.watermark = end
        return 7

    def ensure_partitions(self, start: datetime, end: datetime) -> int:
        self.calls.append(("partitions", (start, end)))
        return 1

    def drop_partitions_before(self, cutoff: datetime) -> int:
        self.calls.append(("drop", (cutoff,)))
        return 2


def run(repository: FakeRollups, **policy: object) -> list[tuple[str, tuple[datetime, ...]]]:
    RollupJob(repository, clock=lambda: NOW, policy=RollupPolicy(**policy)).run()  # type: ignore[arg-type]
    return repository.calls


def test_a_first_run_creates_partitions_rolls_from_the_oldest_row_and_applies_retention() -> None:
    # GIVEN executions since 500 days ago and no watermark
    repository = FakeRollups(None, NOW - timedelta(days=500))
    # WHEN the job runs with a 400-day retention and a month per run
    calls = run(repository, retention=timedelta(days=400))
    # THEN partitions come first, then one month is rolled, and the cutoff stays behind the
    #      watermark (the rest is not rolled up yet)
    assert calls[0] == ("partitions", (NOW, NOW + timedelta(days=62)))
    kind, (start, end) = calls[1]
    assert (kind, end - start) == ("roll", timedelta(hours=744))
    assert calls[2] == ("drop", (end - timedelta(hours=2),))


def test_a_current_watermark_drops_by_retention() -> None:
    # GIVEN a watermark at the current hour
    repository = FakeRollups(datetime(2026, 12, 1, 5, tzinfo=UTC), None)
    # WHEN the job runs
    calls = run(repository, retention=timedelta(days=30))
    # THEN the cutoff is the retention's
    assert calls[-1] == ("drop", (NOW - timedelta(days=30),))


def test_nothing_stored_rolls_and_drops_nothing() -> None:
    # GIVEN an empty table WHEN the job runs THEN only partitions are ensured
    repository = FakeRollups(None, None)
    report = RollupJob(repository, clock=lambda: NOW, policy=RollupPolicy()).run()
    assert [kind for kind, _ in repository.calls] == ["partitions"]
    assert (report.rolled_from, report.hourly_rows, report.partitions_dropped) == (None, 0, 0)
