"""Roll-ups, partitions, retention and report de-duplication of execution_metrics (V012)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from local.services import scratch_database
from shared.adapters.postgres.analytics import PostgresAnalyticsRepository
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.executions import PostgresExecutionRepository
from shared.adapters.postgres.migrations import apply_migrations
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.rollups import PostgresRollups
from shared.domain.analytics import latency_bucket
from shared.ports import ExecutionRecord
from shared.services.rollup import RollupJob, RollupPolicy
from tests import factories

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def seed(db: Database) -> None:
    repo = PostgresBrokerRepository(db)
    for broker_id in ("zerodha", "upstox"):
        repo.upsert(factories.broker(broker_id))


def add_order(
    db: Database,
    order_id: str,
    at: datetime,
    *,
    user_id: str = "trader-1",
    objective: str = "BEST_PRICE",
    children: tuple[tuple[str, int], ...] = (("zerodha", 100),),
) -> None:
    """An order created at ``at`` with one child per (broker, quantity)."""
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO orders (order_id, user_id, client_order_id, request_hash, symbol, "
            "exchange, side, quantity, order_type, product, routing_objective, created_at) "
            "VALUES (%s, %s, %s, %s, 'RELIANCE', 'NSE', 'BUY', %s, 'MARKET', 'CNC', %s, %s)",
            (order_id, user_id, order_id, "a" * 64, sum(q for _, q in children), objective, at),
        )
        for n, (broker_id, quantity) in enumerate(children, start=1):
            conn.execute(
                "INSERT INTO child_orders (child_order_id, order_id, user_id, broker_id, symbol, "
                "side, quantity, order_type, created_at) "
                "VALUES (%s, %s, %s, %s, 'RELIANCE', 'BUY', %s, 'MARKET', %s)",
                (f"{order_id}-{n}", order_id, user_id, broker_id, quantity, at),
            )


def add_execution(
    db: Database,
    order_id: str,
    at: datetime,
    *,
    latency_ms: int | None = 100,
    broker_id: str = "zerodha",
    user_id: str = "trader-1",
    filled: int = 100,
    key: str | None = None,
) -> None:
    """A metrics row stored at ``at`` (as a report stored then would be)."""
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO execution_metrics (order_id, broker_id, symbol, execution_latency_ms, "
            "slippage_bps, price_improvement_bps, fill_rate, user_id, child_order_id, "
            "report_key, status, filled_quantity, charges_inr, created_at) "
            "VALUES (%s, %s, 'RELIANCE', %s, 1.5, 0.5, 100, %s, %s, %s, 'FILLED', %s, 10, %s)",
            (
                order_id,
                broker_id,
                latency_ms,
                user_id,
                f"{order_id}-1",
                key or f"{order_id}:{at.isoformat()}:{latency_ms}",
                filled,
                at,
            ),
        )


def rollup_rows(db: Database) -> list[dict[str, Any]]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT * FROM execution_rollups ORDER BY grain, bucket_start, user_id, broker_id, "
            "strategy"
        ).fetchall()
    return [{k: v for k, v in r.items() if k != "rolled_at"} for r in rows]


def job(db: Database, now: datetime, **policy: Any) -> RollupJob:
    return RollupJob(PostgresRollups(db), clock=lambda: now, policy=RollupPolicy(**policy))


def sql(db: Database, statement: str, *params: Any) -> list[dict[str, Any]]:
    with db.connection() as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def test_rolling_the_same_hours_twice_gives_the_same_rows(db: Database) -> None:
    # GIVEN two orders with executions in two hours
    seed(db)
    add_order(db, "o1", T0 + timedelta(minutes=5), children=(("zerodha", 60), ("upstox", 40)))
    add_execution(db, "o1", T0 + timedelta(minutes=6), latency_ms=120, filled=60)
    add_execution(db, "o1", T0 + timedelta(minutes=7), latency_ms=480, broker_id="upstox")
    add_order(db, "o2", T0 + timedelta(hours=1, minutes=1), objective="FASTEST_EXECUTION")
    add_execution(db, "o2", T0 + timedelta(hours=1, minutes=2), latency_ms=0)
    rollups = PostgresRollups(db)
    # WHEN the hours are rolled up twice
    rollups.roll_hours(T0, T0 + timedelta(hours=2))
    first = rollup_rows(db)
    rollups.roll_hours(T0, T0 + timedelta(hours=2))
    # THEN the rows are the same, per user x broker x strategy x hour, and the day merges them
    assert rollup_rows(db) == first
    hourly = [r for r in first if r["grain"] == "h"]
    assert [(r["bucket_start"], r["broker_id"], r["strategy"]) for r in hourly] == [
        (T0, "", "BEST_PRICE"),
        (T0, "upstox", "BEST_PRICE"),
        (T0, "zerodha", "BEST_PRICE"),
        (T0 + timedelta(hours=1), "", "FASTEST_EXECUTION"),
        (T0 + timedelta(hours=1), "zerodha", "FASTEST_EXECUTION"),
    ]
    zerodha = hourly[2]
    assert (zerodha["orders"], zerodha["ordered_quantity"]) == (1, 60)
    assert zerodha["filled_quantity"] == 60
    assert zerodha["latency_buckets"] == [latency_bucket(120)]
    days = [r for r in first if r["grain"] == "d" and r["broker_id"] == "zerodha"]
    assert [(d["bucket_start"], d["strategy"], d["latency_buckets"]) for d in days] == [
        (T0.replace(hour=0), "BEST_PRICE", [latency_bucket(120)]),
        (T0.replace(hour=0), "FASTEST_EXECUTION", [latency_bucket(0)]),
    ]
    # AND the watermark is the end of the rolled range
    assert rollups.rolled_through() == T0 + timedelta(hours=2)


def test_the_sql_bucket_is_the_domain_bucket(db: Database) -> None:
    # GIVEN latencies across the range, bucket edges included
    latencies = [0, 1, 2, 20, 21, 22, 99, 100, 1_000, 12_345, 600_000, 10**12]
    # WHEN Postgres files them
    rows = sql(db, "SELECT latency_bucket(x) AS b FROM unnest(%s::bigint[]) AS x", latencies)
    # THEN the domain's mirror agrees
    assert [r["b"] for r in rows] == [latency_bucket(x) for x in latencies]


def test_a_late_execution_is_folded_in_by_the_next_run(db: Database) -> None:
    # GIVEN an hour already rolled up with one execution
    seed(db)
    add_order(db, "o1", T0 + timedelta(minutes=1))
    add_execution(db, "o1", T0 + timedelta(minutes=2), latency_ms=100)
    now = T0 + timedelta(hours=1, minutes=10)
    job(db, now).run()
    # WHEN a second execution stamped inside that hour commits after it was rolled, and the
    #      job runs again (the hour is within the recheck window)
    add_execution(db, "o1", T0 + timedelta(minutes=59, seconds=59), latency_ms=300)
    report = job(db, now + timedelta(minutes=15)).run()
    # THEN the hour is rolled again and holds both executions
    assert report.rolled_from is not None
    assert report.rolled_from <= T0
    [row] = sql(
        db,
        "SELECT executions FROM execution_rollups WHERE grain = 'h' AND broker_id = 'zerodha'",
    )
    assert row["executions"] == 2


def test_an_hour_is_rolled_only_once_it_has_settled(db: Database) -> None:
    # GIVEN an execution in the last hour
    seed(db)
    add_order(db, "o1", T0 + timedelta(minutes=1))
    add_execution(db, "o1", T0 + timedelta(minutes=2))
    # WHEN the job runs 2 minutes after that hour ended (settle: 5 minutes)
    report = job(db, T0 + timedelta(hours=1, minutes=2)).run()
    # THEN the hour is not rolled yet (a transaction stamped in it may still commit)...
    assert report.rolled_to is None or report.rolled_to <= T0
    # AND the analytics count the execution anyway, from the raw rows
    analytics = PostgresAnalyticsRepository(db).execution_analytics("trader-1", 30)
    assert analytics.summary.child_executions == 1


def test_hours_and_days_are_utc_whatever_the_session_time_zone(
    db: Database, database_url: str
) -> None:
    # GIVEN sessions in IST (UTC+05:30), and executions either side of 04:00 UTC (09:30 IST)
    #       and of 18:30 UTC (midnight IST)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET timezone = 'Asia/Kolkata'").format(
                psycopg.sql.Identifier(conn.info.dbname)
            )
        )
    # (the pool opens on first use, after the change)
    ist = db
    seed(ist)
    assert sql(ist, "SHOW timezone") == [{"TimeZone": "Asia/Kolkata"}]
    add_order(ist, "o1", T0 - timedelta(hours=1))
    times = [
        T0 - timedelta(seconds=1),
        T0,
        T0.replace(hour=18, minute=29),
        T0.replace(hour=18, minute=31),
    ]
    for n, at in enumerate(times):
        add_execution(ist, "o1", at, latency_ms=10 + n)
    # WHEN those hours are rolled up in an IST session
    PostgresRollups(ist).roll_hours(T0 - timedelta(hours=2), T0 + timedelta(hours=16))
    # THEN the hourly buckets start on UTC hours, and one UTC day (and month) holds all four
    rows = sql(
        ist,
        "SELECT grain, to_char(bucket_start AT TIME ZONE 'UTC', 'DD HH24:MI') AS at, executions "
        "FROM execution_rollups WHERE broker_id = 'zerodha' ORDER BY grain, bucket_start",
    )
    assert [(r["grain"], r["at"], r["executions"]) for r in rows] == [
        ("d", "30 00:00", 4),
        ("h", "30 03:00", 1),
        ("h", "30 04:00", 1),
        ("h", "30 18:00", 2),
        ("m", "01 00:00", 4),
    ]


def test_an_empty_window_reads_zeros_from_roll_ups_and_raw_rows(db: Database) -> None:
    # GIVEN roll-ups of a year ago only, and nothing since
    seed(db)
    old = datetime.now(UTC) - timedelta(days=300)
    add_order(db, "o1", old)
    add_execution(db, "o1", old)
    job(db, datetime.now(UTC)).run()
    # WHEN the last day is asked for, and an unknown trader's year
    day = PostgresAnalyticsRepository(db).execution_analytics("trader-1", 1)
    nobody = PostgresAnalyticsRepository(db).execution_analytics("nobody", 365)
    # THEN both are zeros with unknown (null) rates and percentiles
    for analytics in (day, nobody):
        assert analytics.summary.orders == 0
        assert analytics.summary.child_executions == 0
        assert analytics.summary.p95_latency_ms is None
        assert analytics.summary.fill_rate_percentage is None
        assert analytics.by_broker == ()
    # AND the year of the trader holds the old execution
    year = PostgresAnalyticsRepository(db).execution_analytics("trader-1", 365)
    assert year.summary.child_executions == 1


def test_roll_ups_and_raw_rows_give_the_same_analytics(db: Database) -> None:
    # GIVEN executions over three days, across UTC midnights, weekly ones before, and one in
    #       the current hour
    seed(db)
    now = datetime.now(UTC)
    for n in range(30):
        at = now - timedelta(hours=2 * n + 0.5)
        add_order(db, f"o{n}", at, children=(("zerodha", 50), ("upstox", 50)))
        add_execution(db, f"o{n}", at, latency_ms=10 * (n + 1), filled=50)
        add_execution(db, f"o{n}", at, latency_ms=7 * (n + 1), broker_id="upstox", filled=20)
    for n in range(12):
        # Weekly ones over 80 days: whole months are read from monthly rows.
        at = now - timedelta(days=7 * n + 3, minutes=n)
        add_order(db, f"w{n}", at, objective="SMART_BALANCE")
        add_execution(db, f"w{n}", at, latency_ms=1000 + n, filled=0)
    add_order(db, "now", now)
    add_execution(db, "now", now, latency_ms=5)
    repository = PostgresAnalyticsRepository(db)
    windows = (1, 2, 3, 90)
    # WHEN the analytics are read from the raw rows alone, then after the roll-up
    raw = {days: repository.execution_analytics("trader-1", days) for days in windows}
    job(db, now, max_hours=24 * 100).run()
    rolled = {days: repository.execution_analytics("trader-1", days) for days in windows}
    # THEN they are the same, whatever the window
    assert rolled == raw
    assert rolled[90].summary.child_executions == 61 + 12
    assert rolled[3].summary.filled_quantity == 30 * 70 + 100
    assert [s.strategy for s in rolled[90].by_strategy] == ["BEST_PRICE", "SMART_BALANCE"]
    by_broker = {b.broker_id: b for b in rolled[3].by_broker}
    assert by_broker["upstox"].fill_rate_percentage == 40.0
    assert by_broker["zerodha"].p50_latency_ms is not None


def test_a_row_without_a_partition_waits_in_the_default_one_and_is_moved(db: Database) -> None:
    # GIVEN an execution stamped in a month that has no partition yet
    seed(db)
    far = datetime(2031, 5, 17, 9, 15, tzinfo=UTC)
    add_order(db, "o1", far)
    add_execution(db, "o1", far, key="far-key")
    [held] = sql(db, "SELECT count(*) AS n FROM execution_metrics_default")
    # WHEN the partitions of that month are created
    created = PostgresRollups(db).ensure_partitions(far, far + timedelta(days=1))
    # THEN the row was kept, and now lives in its month's partition
    assert held["n"] == 1
    assert created == 1
    rows = sql(db, "SELECT tableoid::regclass::text AS part, report_key FROM execution_metrics")
    assert rows == [{"part": "execution_metrics_p203105", "report_key": "far-key"}]
    # AND creating them again is a no-op
    assert PostgresRollups(db).ensure_partitions(far, far + timedelta(days=1)) == 0


def test_retention_drops_old_partitions_but_never_the_roll_ups(db: Database) -> None:
    # GIVEN an execution 500 days ago, rolled up, and one today
    seed(db)
    now = datetime.now(UTC)
    old = now - timedelta(days=500)
    PostgresRollups(db).ensure_partitions(old, old + timedelta(days=1))
    add_order(db, "old", old)
    add_execution(db, "old", old, key="old-key")
    add_order(db, "new", now - timedelta(hours=3))
    add_execution(db, "new", now - timedelta(hours=3))
    # WHEN the job runs with a retention of 400 days (rolling all 500 days at once)
    report = job(db, now, retention=timedelta(days=400), max_hours=24 * 600).run()
    # THEN the old partition (and the old report key) is gone, today's row is kept
    assert report.partitions_dropped >= 1
    assert [r["order_id"] for r in sql(db, "SELECT order_id FROM execution_metrics")] == ["new"]
    assert sql(db, "SELECT 1 FROM execution_report_keys WHERE report_key = 'old-key'") == []
    # AND the roll-ups of the dropped rows remain
    old_rows = sql(
        db,
        "SELECT executions FROM execution_rollups WHERE grain = 'h' AND broker_id = 'zerodha' "
        "AND bucket_start < %s",
        now - timedelta(days=400),
    )
    assert [r["executions"] for r in old_rows] == [1]


def test_retention_never_drops_rows_the_roll_up_has_not_covered(db: Database) -> None:
    # GIVEN an old execution the roll-up has not reached (it rolls at most one hour a run)
    seed(db)
    now = datetime.now(UTC)
    old = now - timedelta(days=500)
    PostgresRollups(db).ensure_partitions(old, old + timedelta(days=1))
    add_order(db, "old", old)
    add_execution(db, "old", old)
    add_execution(db, "old", now - timedelta(days=450))
    # WHEN the job runs with a retention of 400 days but one hour per run
    job(db, now, retention=timedelta(days=400), max_hours=1).run()
    # THEN the rows newer than the watermark are all still there
    assert len(sql(db, "SELECT id FROM execution_metrics")) == 2


def record(order_id: str, key: str) -> ExecutionRecord:
    return ExecutionRecord(
        report_key=key,
        order_id=order_id,
        child_order_id=f"{order_id}-1",
        user_id="trader-1",
        broker_id="zerodha",
        symbol="RELIANCE",
        status="FILLED",
        filled_quantity=100,
        fill_price=Decimal("2951"),
        execution_latency_ms=140,
        slippage_bps=1.0,
        price_improvement_bps=0.0,
        fill_rate=100.0,
        execution_quality_score=0.9,
        charges_inr=Decimal("10"),
        market_conditions={},
    )


def test_a_report_is_stored_once_even_when_its_first_copy_is_in_another_partition(
    db: Database,
) -> None:
    # GIVEN a report stored, whose row then sits in another month's partition
    seed(db)
    add_order(db, "o1", T0)
    executions = PostgresExecutionRepository(db)
    assert executions.record(record("o1", "zerodha:B-1:FILLED:100")) is True
    PostgresRollups(db).ensure_partitions(T0 - timedelta(days=400), T0)
    sql(db, "UPDATE execution_metrics SET created_at = created_at - interval '13 months'")
    # WHEN the same report is stored again
    again = executions.record(record("o1", "zerodha:B-1:FILLED:100"))
    # THEN it is refused, one row remains and the key is known as applied
    assert again is False
    assert len(sql(db, "SELECT id FROM execution_metrics")) == 1
    assert executions.applied_keys(["zerodha:B-1:FILLED:100", "other"]) == {
        "zerodha:B-1:FILLED:100"
    }


def test_concurrent_copies_of_a_report_store_one_row(db: Database) -> None:
    # GIVEN one order and eight threads holding the same report
    seed(db)
    add_order(db, "o1", T0)
    executions = PostgresExecutionRepository(db)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def store() -> None:
        barrier.wait()
        results.append(executions.record(record("o1", "zerodha:B-9:FILLED:100")))

    threads = [threading.Thread(target=store) for _ in range(8)]
    # WHEN they store it at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly one stored it
    assert sorted(results) == [False] * 7 + [True]
    assert len(sql(db, "SELECT id FROM execution_metrics")) == 1


@pytest.fixture
def v11_database_url(postgres_admin_url: str) -> Iterator[str]:
    with scratch_database(postgres_admin_url, "router_v11") as url:
        apply_migrations(url, up_to="V011")
        yield url


def test_the_unpartitioned_table_is_migrated_with_its_rows_and_keys(v11_database_url: str) -> None:
    # GIVEN the unpartitioned table with two rows of March 2025 (naive UTC timestamps)
    with psycopg.connect(v11_database_url, autocommit=True) as conn:
        for n in (1, 2):
            conn.execute(
                "INSERT INTO execution_metrics (order_id, broker_id, symbol, "
                "execution_latency_ms, report_key, user_id, filled_quantity, created_at) "
                "VALUES (%s, 'zerodha', 'RELIANCE', %s, %s, 'trader-1', 10, %s)",
                (f"o{n}", 100 * n, f"key-{n}", datetime(2025, 3, n, 10, 30)),
            )
    # WHEN V012 runs
    applied = apply_migrations(v11_database_url)
    # THEN every row is kept with its id and time (as UTC), in March 2025's partition
    assert applied[0].startswith("V012")
    with psycopg.connect(v11_database_url) as conn:
        rows = conn.execute(
            "SELECT id, order_id, execution_latency_ms, created_at, "
            "tableoid::regclass::text AS part FROM execution_metrics ORDER BY id"
        ).fetchall()
        keys = conn.execute("SELECT report_key FROM execution_report_keys ORDER BY 1").fetchall()
        next_id = conn.execute("SELECT nextval('execution_metrics_id_seq')").fetchone()
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (1, "o1", 100, "execution_metrics_p202503"),
        (2, "o2", 200, "execution_metrics_p202503"),
    ]
    assert rows[0][3] == datetime(2025, 3, 1, 10, 30, tzinfo=UTC)
    # AND their keys still de-duplicate, and new ids follow the old ones
    assert keys == [("key-1",), ("key-2",)]
    assert next_id is not None
    assert next_id[0] == 3
