"""Round trips, connections and CPU per order, through ``lambda_handler`` in one container.

Run: ``python -m bench.data_path`` -> ``bench/results/data_path.json``.

The benchmark, not the shipped code, counts: it wraps psycopg's and redis-py's lowest send
points in this process (a pipelined batch is one round trip, as on the wire) and times each
call. Per order kind (analyze, smart, order read): Postgres and Redis round trips, the time
waiting on each, the CPU time of the handler (``time.process_time``; the servers' CPU is not
in it) and the wall time; the container's Postgres connections (its pool) at the end. The floor
is a Redis GET plus a Postgres INSERT, timed alone in the same run, as in bench/route_order.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import redis
from psycopg import pq

import shared.wiring
from bench.harness import bench_services, percentile, summary_ms, time_calls, write_result
from bench.route_order import BODY, QUIET, TRADER, NullPublisher
from local import seed
from local.apigw import LocalLambdaContext, http_api_event
from shared.domain.contracts import ApiPath
from shared.wiring import Wiring, utc_now

ORDERS = 500


class Counter:
    """Round trips and seconds per data store, reset per measured call."""

    def __init__(self) -> None:
        self.calls = {"postgres": 0, "redis": 0}
        self.seconds = {"postgres": 0.0, "redis": 0.0}

    def reset(self) -> None:
        for key in self.calls:
            self.calls[key] = 0
            self.seconds[key] = 0.0


COUNTER = Counter()


@contextlib.contextmanager
def instrumented() -> Iterator[None]:
    """Count Postgres and Redis round trips in this process, and the time spent in them.

    Postgres: each wait on the socket outside pipeline mode is a round trip; a pipeline
    block, whatever it sends, is one (its statements go out together and its sync is read
    once). Redis: each command, and each pipeline, is one.
    """
    pg_wait = psycopg.Connection.wait
    pg_pipeline = psycopg.Connection.pipeline
    redis_command = redis.Redis.execute_command
    redis_pipeline = redis.client.Pipeline.execute

    def timed(store: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            COUNTER.calls[store] += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                COUNTER.seconds[store] += time.perf_counter() - started

        return wrapper

    def wait(self: psycopg.Connection[Any], gen: Any, *args: Any, **kwargs: Any) -> Any:
        # psycopg runs every operation through wait(), also those that never touch the socket
        # (switching autocommit, COMMIT with no transaction open): only a generator that asks
        # to wait on the socket went to the server.
        seen: list[bool] = []
        started = time.perf_counter()
        try:
            return pg_wait(self, _observed(gen, seen), *args, **kwargs)
        finally:
            COUNTER.seconds["postgres"] += time.perf_counter() - started
            # Inside a pipeline: not a round trip of its own (the block counts once).
            COUNTER.calls["postgres"] += int(bool(seen) and self._pipeline is None)

    @contextlib.contextmanager
    def pipeline(self: psycopg.Connection[Any]) -> Iterator[Any]:
        outermost = self._pipeline is None
        with pg_pipeline(self) as block:
            yield block
        COUNTER.calls["postgres"] += int(outermost)

    psycopg.Connection.wait = wait  # type: ignore[method-assign]
    psycopg.Connection.pipeline = pipeline  # type: ignore[method-assign]
    redis.Redis.execute_command = timed("redis", redis_command)  # type: ignore[method-assign]
    redis.client.Pipeline.execute = timed("redis", redis_pipeline)  # type: ignore[method-assign]
    try:
        yield
    finally:
        psycopg.Connection.wait = pg_wait  # type: ignore[method-assign]
        psycopg.Connection.pipeline = pg_pipeline  # type: ignore[method-assign]
        redis.Redis.execute_command = redis_command  # type: ignore[method-assign]
        redis.client.Pipeline.execute = redis_pipeline  # type: ignore[method-assign]


def _observed(gen: Any, seen: list[bool]) -> Any:
    """``gen`` as is, noting in ``seen`` whether it ever waited on the socket (real I/O)."""
    try:
        request = next(gen)
    except StopIteration as stop:
        return stop.value
    seen.append(True)
    while True:
        try:
            ready = yield request
        except BaseException as exc:
            try:
                request = gen.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            request = gen.send(ready)
        except StopIteration as stop:
            return stop.value


def _event(method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
    return http_api_event(
        method,
        path,
        body=None if body is None else json.dumps(body),
        headers={"content-type": "application/json"},
        claims=TRADER,
    )


def measure(call: Callable[[int], Any], count: int) -> dict[str, Any]:
    """Per call: round trips and waits per store, handler CPU, wall time (medians and p95)."""
    rows: list[dict[str, float]] = []
    for i in range(count):
        COUNTER.reset()
        cpu, wall = time.process_time(), time.perf_counter()
        call(i)
        rows.append(
            {
                "wall": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
                "pg": COUNTER.calls["postgres"],
                "redis": COUNTER.calls["redis"],
                "pg_s": COUNTER.seconds["postgres"],
                "redis_s": COUNTER.seconds["redis"],
            }
        )

    def col(name: str) -> list[float]:
        return [r[name] for r in rows]

    return {
        "postgres_round_trips": {"max": max(col("pg")), "mean": round(_mean(col("pg")), 2)},
        "redis_round_trips": {"max": max(col("redis")), "mean": round(_mean(col("redis")), 2)},
        "postgres_wait_ms_p50": round(percentile(col("pg_s"), 50) * 1000, 3),
        "redis_wait_ms_p50": round(percentile(col("redis_s"), 50) * 1000, 3),
        "handler_cpu_ms_p50": round(percentile(col("cpu"), 50) * 1000, 3),
        "handler_cpu_ms_mean": round(_mean(col("cpu")) * 1000, 3),
        "wall": summary_ms(col("wall")),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _wiring(services: Any) -> Wiring:
    wiring = Wiring(
        services.settings(
            enforce_market_hours=False, risk_max_open_orders=10_000_000, db_pool_max=2
        ),
        publisher=NullPublisher(),
    )
    for broker in seed.seed_brokers():
        wiring.brokers.upsert(
            broker.model_copy(
                update={
                    "adapter_config": {**broker.adapter_config, **QUIET},
                    "rate_limit_per_s": 1_000_000,
                }
            )
        )
    for profile in seed.seed_profiles(utc_now()):
        wiring.profile_repository.upsert(profile.model_copy(update={"rate_limit_per_s": 1_000_000}))
    for instrument in seed.seed_instruments(utc_now()):
        wiring.instruments.upsert(instrument)
    return wiring


def main() -> None:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    results: dict[str, Any] = {"load_avg_before": [round(x, 2) for x in os.getloadavg()]}
    with bench_services() as services:
        wiring = _wiring(services)
        shared.wiring.get_wiring.cache_clear()
        shared.wiring.get_wiring = lambda: wiring  # type: ignore[assignment]
        from functions.route_order import handler

        def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            response = handler.lambda_handler(_event(method, path, body), LocalLambdaContext("b"))
            if response["statusCode"] != 200:
                raise RuntimeError(f"{path}: {response['statusCode']} {response.get('body')}")
            return json.loads(response["body"])

        orders: list[str] = []

        def smart(i: int) -> None:
            body = {**BODY, "clientOrderId": f"dp-{i}-{uuid.uuid4().hex[:8]}"}
            orders.append(call("POST", ApiPath.SMART_ORDER, body)["orderId"])

        client = redis.Redis.from_url(services.redis_url)
        client.set(f"{services.redis_prefix}raw", b"x" * 2048)
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw_roundtrip (id BIGSERIAL PRIMARY KEY, v TEXT)")

            def raw(_: int) -> None:
                client.get(f"{services.redis_prefix}raw")
                conn.execute("INSERT INTO raw_roundtrip (v) VALUES ('x')")

            floor = summary_ms(time_calls(raw, ORDERS))
        with contextlib.redirect_stdout(io.StringIO()), instrumented():
            for i in range(50):  # warm: imports, pool, caches
                call("POST", ApiPath.ANALYZE_ORDER, BODY)
                smart(-1 - i)
            results["analyze"] = measure(
                lambda _: call("POST", ApiPath.ANALYZE_ORDER, BODY), ORDERS
            )
            results["smart"] = measure(smart, ORDERS)
            results["order_read"] = measure(
                lambda i: call("GET", ApiPath.ORDER.format(orderId=orders[i % len(orders)])),
                ORDERS,
            )
        pool = wiring.database.pool.get_stats()
        results["postgres_connections_per_container"] = {
            "pool_size": pool.get("pool_size"),
            "pool_max": wiring.settings.db_pool_max,
            "connections_opened": pool.get("connections_num"),
        }
        results["prepared_statements_server_side"] = _prepared(wiring)
        results["floor_redis_get_plus_pg_insert_alone_ms"] = floor
        client.close()
        wiring.database.close()
    for kind in ("analyze", "smart"):
        results[f"{kind}_p95_over_floor_p95"] = round(
            results[kind]["wall"]["p95_ms"] / floor["p95_ms"], 2
        )
    results["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    results["libpq"] = pq.version()
    write_result("data_path", results)


def _prepared(wiring: Wiring) -> int:
    with wiring.database.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()
    return int(row["n"]) if row else -1


if __name__ == "__main__":
    main()
