"""Analytics over 365 days at ten million execution rows, from roll-ups (docs/data-layer.md).

Generates the rows in Postgres (``generate_series``, one statement per table), rolls them up
with the roll-up job (a month per run, as a lagging job catches up), adds executions in the
current hour (read live), then times ``AnalyticsService.execution_analytics(user, 365)`` without
its cache (every call runs the query), with its Redis cache, and the floor alone in the same
run: one indexed primary-key SELECT on the same pool. The on-demand query the roll-ups replace
(every row read raw) is timed a few times before the roll-up, for scale.

Run: ``python -m bench.analytics`` -> ``bench/results/analytics.json``.
``BENCH_ANALYTICS_ROWS`` (default 10,000,000) scales the generated executions.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
import redis

from bench.harness import bench_services, summary_ms, time_calls, write_result
from shared.adapters.postgres.analytics import PostgresAnalyticsRepository
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.pool import Database, create_pool
from shared.adapters.postgres.rollups import PostgresRollups
from shared.adapters.redis.analytics_cache import RedisAnalyticsCache
from shared.adapters.redis.client import RedisGuard
from shared.domain.analytics import ExecutionAnalytics
from shared.services.analytics import AnalyticsService
from shared.services.rollup import RollupJob, RollupPolicy
from tests import factories

ROWS = int(os.environ.get("BENCH_ANALYTICS_ROWS", "10000000"))
REPORTS_PER_ORDER = 10  # two children, five reports each (partial fills)
USERS = int(os.environ.get("BENCH_ANALYTICS_USERS", "50"))
TARGET_P95_MS = 50.0
N = 200

# Orders on the trading hours (09:15-15:30 IST = 03:45-10:00 UTC) of the 364 days before today.
ORDERS = """
INSERT INTO orders (order_id, user_id, client_order_id, request_hash, symbol, exchange, side,
    quantity, order_type, product, routing_objective, status, created_at)
SELECT 'b' || g, 'trader-' || (g %% %(users)s), 'c' || g, repeat('a', 64), 'RELIANCE', 'NSE',
    'BUY', 100, 'MARKET', 'CNC',
    (ARRAY['BEST_PRICE', 'FASTEST_EXECUTION', 'SMART_BALANCE'])[1 + g %% 3], 'COMPLETED',
    date_trunc('day', now(), 'UTC') - (1 + g %% 364) * interval '1 day'
        + interval '3 hours 45 minutes' + ((g * 7919) %% 22500) * interval '1 second'
FROM generate_series(1::bigint, %(orders)s::bigint) AS g
"""
CHILDREN = """
INSERT INTO child_orders (child_order_id, order_id, user_id, broker_id, symbol, side, quantity,
    order_type, status, created_at)
SELECT o.order_id || '-' || n, o.order_id, o.user_id,
    (ARRAY['zerodha', 'upstox', 'dhan'])[1 + (substr(o.order_id, 2)::bigint + n) %% 3],
    'RELIANCE', 'BUY', 50, 'MARKET', 'FILLED', o.created_at
FROM orders o, generate_series(1, 2) AS n
WHERE o.order_id LIKE 'b%%'
"""
# Ten reports per order, five per child; latencies skewed (tens of ms to seconds).
METRICS = """
INSERT INTO execution_metrics (order_id, broker_id, symbol, execution_latency_ms, slippage_bps,
    price_improvement_bps, fill_rate, execution_quality_score, user_id, child_order_id, status,
    filled_quantity, charges_inr, created_at)
SELECT c.order_id, c.broker_id, 'RELIANCE', lat, (r %% 7) * 0.5, (r %% 3) * 0.25, 20 * r, 0.9,
    c.user_id, c.child_order_id, CASE WHEN r = 5 THEN 'FILLED' ELSE 'PARTIALLY_FILLED' END, 10,
    CASE WHEN r = 5 THEN 20 ELSE 0 END, c.created_at + lat * interval '1 millisecond'
FROM child_orders c, generate_series(1, 5) AS r,
    LATERAL (SELECT 20 + ((hashtext(c.child_order_id)::bigint + r * 7907) & 1023)
        * (1 + (r * 31 + length(c.child_order_id)) %% 5) AS lat) AS l
WHERE c.order_id LIKE 'b%%'
"""
# Executions of the current hour, read live by every query.
LIVE = """
INSERT INTO execution_metrics (order_id, broker_id, symbol, execution_latency_ms, user_id,
    child_order_id, status, filled_quantity, charges_inr, created_at)
SELECT 'b' || (g * %(users)s), 'zerodha', 'RELIANCE', 50 + g %% 200, 'trader-0',
    'b' || (g * %(users)s) || '-1', 'FILLED', 10, 0, now() - (g %% 50) * interval '1 second'
FROM generate_series(1, 500) AS g
"""


def _progress(message: str) -> None:
    # A 10M-row run takes minutes: say where it is (stderr, the result goes to stdout).
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


class NoCache:
    """An analytics cache that never holds anything: every call runs the query."""

    def get(self, user_id: str, days: int) -> ExecutionAnalytics | None:
        return None

    def put(self, user_id: str, days: int, analytics: ExecutionAnalytics) -> None:
        return None


def generate(database_url: str) -> dict[str, float]:
    """Orders, children and metrics rows in Postgres; seconds per table."""
    orders = max(1, ROWS // REPORTS_PER_ORDER)
    taken: dict[str, float] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        now = datetime.now(UTC)
        conn.execute("SELECT ensure_execution_partitions(%s, %s)", (now - timedelta(days=400), now))
        for name, statement in (("orders", ORDERS), ("children", CHILDREN), ("metrics", METRICS)):
            start = time.perf_counter()
            conn.execute(statement, {"users": USERS, "orders": orders})
            taken[f"{name}_s"] = round(time.perf_counter() - start, 1)
            _progress(f"generated {name} in {taken[f'{name}_s']} s")
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        taken["vacuum_analyze_s"] = round(time.perf_counter() - start, 1)
        [count] = conn.execute("SELECT count(*) FROM execution_metrics").fetchone() or [0]
    taken["execution_rows"] = count
    return taken


def roll_up(db: Database) -> dict[str, float]:
    """Run the roll-up job until it has caught up (a month per run); seconds and runs."""
    job = RollupJob(
        PostgresRollups(db), clock=lambda: datetime.now(UTC), policy=RollupPolicy(max_hours=744)
    )
    start = time.perf_counter()
    runs = rows = 0
    while True:
        report = job.run()
        runs += 1
        rows += report.hourly_rows
        _progress(f"roll-up run {runs}: through {report.rolled_to}")
        if report.rolled_to is None or report.rolled_to >= datetime.now(UTC) - timedelta(hours=2):
            break
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM execution_rollups").fetchone()
    return {
        "rollup_s": round(time.perf_counter() - start, 1),
        "runs": runs,
        "hourly_rows_written": rows,
        "rollup_rows": 0 if row is None else row["n"],
    }


def main() -> None:
    with bench_services() as services:
        db = Database(create_pool(services.settings()))
        for broker_id in ("zerodha", "upstox", "dhan"):
            PostgresBrokerRepository(db).upsert(factories.broker(broker_id))
        generation = generate(services.database_url)
        repository = PostgresAnalyticsRepository(db)
        uncached = AnalyticsService(repository, NoCache())
        # Before any roll-up every row is read raw: far beyond a request's 2 s statement timeout
        # at this size, so it gets a pool of its own without one.
        patient = Database(create_pool(services.settings(db_statement_timeout_ms=600_000)))
        raw = AnalyticsService(PostgresAnalyticsRepository(patient), NoCache())
        on_demand = [
            summary_ms(time_calls(lambda _: raw.execution_analytics("trader-0", 365), 3, 0))
        ]
        patient.close()
        rollup = roll_up(db)
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(LIVE, {"users": USERS})
            conn.execute("ANALYZE")
        client = redis.Redis.from_url(services.redis_url)
        cached = AnalyticsService(
            repository,
            RedisAnalyticsCache(
                client, ttl_s=3600, prefix=services.redis_prefix, guard=RedisGuard()
            ),
        )

        def floor(i: int) -> None:
            with db.connection() as conn:
                conn.execute(
                    "SELECT order_id FROM orders WHERE order_id = %s", (f"b{i % 997 + 1}",)
                )

        users = [f"trader-{u}" for u in range(USERS)]
        results = {
            "floor_pk_select": summary_ms(time_calls(floor, N * 5)),
            "analytics_365d_uncached": summary_ms(
                time_calls(lambda i: uncached.execution_analytics(users[i % USERS], 365), N)
            ),
            "analytics_30d_uncached": summary_ms(
                time_calls(lambda i: uncached.execution_analytics(users[i % USERS], 30), N)
            ),
            "analytics_365d_cached": summary_ms(
                time_calls(lambda _: cached.execution_analytics("trader-0", 365), N)
            ),
        }
        p95 = results["analytics_365d_uncached"]["p95_ms"]
        answer = uncached.execution_analytics("trader-0", 365)
        client.close()
        db.close()
    write_result(
        "analytics",
        {
            "generation": generation,
            "rollup": rollup,
            "on_demand_365d_before_rollup": on_demand[0],
            **results,
            "ratio_365d_uncached_p95_to_floor_p95": round(
                p95 / results["floor_pk_select"]["p95_ms"], 1
            ),
            # The floor's p95 swings with a shared machine's load; its p50 barely does.
            "ratio_365d_uncached_p50_to_floor_p50": round(
                results["analytics_365d_uncached"]["p50_ms"] / results["floor_pk_select"]["p50_ms"],
                1,
            ),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "target_p95_ms": TARGET_P95_MS,
            "target_met": p95 <= TARGET_P95_MS,
            "sample_answer": {
                "executions": answer.summary.child_executions,
                "p50_latency_ms": answer.summary.p50_latency_ms,
                "p95_latency_ms": answer.summary.p95_latency_ms,
                "brokers": len(answer.by_broker),
                "strategies": len(answer.by_strategy),
            },
        },
    )


if __name__ == "__main__":
    main()
