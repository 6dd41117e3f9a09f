"""Data-layer latencies against the raw Redis GET and Postgres INSERT of the same run.

Run: ``python -m bench.data_layer`` -> ``bench/results/data_layer.json``.
"""

from __future__ import annotations

import uuid

import psycopg
import redis

from bench.harness import bench_services, summary_us, time_calls, write_result
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.orders import PostgresOrderRepository
from shared.adapters.postgres.pool import Database, create_pool
from shared.adapters.postgres.profiles import PostgresProfileRepository
from shared.adapters.redis.client import RedisGuard
from shared.adapters.redis.profile_cache import RedisProfileCache
from shared.adapters.redis.rate_counter import RedisRateCounter
from shared.adapters.redis.routing_inputs import RedisRoutingInputs
from shared.services.profiles import ProfileService
from tests import factories

BROKERS = ("angel", "dhan", "fyers", "groww", "icici", "kotak", "upstox", "zerodha")
N = 3000


def main() -> None:
    with bench_services() as services:
        db = Database(create_pool(services.settings()))
        client = redis.Redis.from_url(services.redis_url)
        brokers = PostgresBrokerRepository(db)
        profiles = PostgresProfileRepository(db)
        for broker_id in BROKERS:
            brokers.upsert(factories.broker(broker_id))
            profiles.upsert(factories.profile(broker_id))
        cache = RedisProfileCache(client, ttl_s=300, prefix=services.redis_prefix)
        rates = RedisRateCounter(client, prefix=services.redis_prefix)
        service = ProfileService(
            profiles,
            cache,
            brokers,
            inputs=RedisRoutingInputs(client, cache, rates, guard=RedisGuard()),
        )
        orders = PostgresOrderRepository(db)
        results: dict[str, dict[str, float]] = {}

        # The floor: one Redis GET of a 2 KB value, one autocommitted Postgres INSERT.
        client.set(f"{services.redis_prefix}raw", b"x" * 2048)
        results["raw_redis_get"] = summary_us(
            time_calls(lambda _: client.get(f"{services.redis_prefix}raw"), N)
        )
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw_insert (id BIGSERIAL PRIMARY KEY, v TEXT)")
            results["raw_pg_insert"] = summary_us(
                time_calls(lambda _: conn.execute("INSERT INTO raw_insert (v) VALUES ('x')"), N)
            )

        service.profiles_for("RELIANCE")  # warm the cache
        results["profile_read_cached"] = summary_us(
            time_calls(lambda _: service.profiles_for("RELIANCE"), N)
        )
        # What routing reads per order: the profiles and the rate counts, in one MGET.
        results["routing_inputs_cached"] = summary_us(
            time_calls(lambda _: service.profiles_and_counts("RELIANCE"), N)
        )
        results["profile_read_db"] = summary_us(
            time_calls(lambda _: profiles.list_for_symbol("RELIANCE"), N)
        )

        def write_decision(_: int) -> None:
            request = factories.order(order_id=f"o-{uuid.uuid4().hex[:16]}", quantity=300)
            factories.store(
                orders,
                request,
                {"zerodha": 200, "upstox": 100},
                [factories.routed_event(request)],
            )

        results["decision_write"] = summary_us(time_calls(write_decision, N // 3))
        client.close()
        db.close()
    write_result("data_layer", results)


if __name__ == "__main__":
    main()
