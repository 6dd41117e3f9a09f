"""track_execution throughput (MSK batches of 100) and EventBridge latency, in-process.

Run: ``python -m bench.track_execution`` -> ``bench/results/track_execution.json``.

Every report is a real fill of a real child order (stored first), processed through
``lambda_handler`` with the real Postgres and Redis: metrics row, child update, profile EWMA,
cache refresh and the notifier's registry lookup (no sockets are open, so nothing is posted).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import shared.wiring
from bench.costs import Costs, measure_costs
from bench.harness import BenchServices, bench_services, summary_ms, time_calls, write_result
from local import seed
from local.apigw import LocalLambdaContext
from shared.domain.contracts import execution_reported_event
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import Exchange, OrderRequest, OrderType, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.wiring import Wiring, utc_now

MSK_REPORTS = 5000
BATCH = 100
CONTAINERS = int(os.environ.get("BENCH_MSK_CONTAINERS", "2"))
SYMBOLS = int(os.environ.get("BENCH_MSK_SYMBOLS", "1"))
"""Symbols the children are spread over (1: every report learns about RELIANCE's profiles)."""
"""Tracker containers consuming partitions at once (MSK runs one poller per partition)."""
EVENTBRIDGE_REPORTS = 1000


def make_children(wiring: Wiring, count: int) -> list[ChildOrder]:
    """``count`` placed children of 10 RELIANCE shares, 50 to an order, over the seeded brokers."""
    brokers = [b.broker_id for b in seed.seed_brokers()]
    # Reports over several symbols touch a profile per broker x symbol, as production does.
    symbols = list(seed.SYMBOLS)[:SYMBOLS]
    children: list[ChildOrder] = []
    for start in range(0, count, 50):
        order_id = f"ord-{uuid.uuid4().hex[:16]}"
        request = OrderRequest(
            order_id=order_id,
            user_id="bench-trader",
            client_order_id=order_id,
            symbol="RELIANCE",
            side=Side.BUY,
            quantity=10 * min(50, count - start),
            order_type=OrderType.MARKET,
        )
        decision, _ = wiring.routing.decide(request)
        kids = [
            ChildOrder(
                child_order_id=f"{order_id}-{n}",
                order_id=order_id,
                user_id=request.user_id,
                broker_id=brokers[n % len(brokers)],
                symbol=symbols[n % len(symbols)],
                exchange=Exchange.NSE,
                side=Side.BUY,
                quantity=10,
                order_type=OrderType.MARKET,
                product=request.product,
                expected_price=Decimal("1295.50"),
                arrival_bid=Decimal("1295.00"),
                arrival_ask=Decimal("1295.50"),
                status=ChildOrderStatus.PLACED,
                broker_order_id=f"B-{order_id}-{n}",
                placed_at=utc_now(),
            )
            for n in range(min(50, count - start))
        ]
        wiring.orders.save_routed_order(
            request, request_hash="b" * 64, decision=decision, children=kids, events=[]
        )
        children.extend(kids)
    return children


def fill(child: ChildOrder) -> dict[str, Any]:
    report = ExecutionReport(
        broker_id=child.broker_id,
        broker_order_id=child.broker_order_id or "x",
        child_order_id=child.child_order_id,
        status=ExecutionStatus.FILLED,
        quantity=child.quantity,
        filled_quantity=child.quantity,
        average_price=Decimal("1295.75"),
        symbol=child.symbol,
        exchange=child.exchange,
        side=child.side,
        event_time=(child.placed_at or utc_now()) + timedelta(milliseconds=150),
    )
    event = execution_reported_event(child.order_id, child.user_id, report, uuid.uuid4())
    return {"detail-type": event.detail_type, "source": event.source, "detail": event.detail}


def msk_event(envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "eventSource": "aws:kafka",
        "records": {
            "order-executions-0": [
                {
                    "topic": "order-executions",
                    "partition": 0,
                    "offset": i,
                    "timestamp": 0,
                    "timestampType": "CREATE_TIME",
                    "key": None,
                    "value": base64.b64encode(json.dumps(e, default=str).encode()).decode(),
                    "headers": [],
                }
                for i, e in enumerate(envelopes)
            ]
        },
    }


def batch_floor(database_url: str, batches: int) -> tuple[list[float], Costs]:
    """The least a batch must cost: 100 rows of the metrics' width in one INSERT, committed.

    Timed alone, in the same run, as the floor the batch throughput is compared with.
    """
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "CREATE TABLE floor_metrics (id BIGSERIAL PRIMARY KEY, report_key TEXT UNIQUE, "
            "order_id TEXT, broker_id TEXT, symbol TEXT, fill_price NUMERIC, market JSONB)"
        )
        conn.commit()

        def insert(i: int) -> None:
            keys = [f"{i}-{n}-{uuid.uuid4().hex}" for n in range(BATCH)]
            conn.execute(
                "INSERT INTO floor_metrics (report_key, order_id, broker_id, symbol, fill_price, "
                "market) SELECT k, 'ord', 'zerodha', 'RELIANCE', 1295.75, '{}'::jsonb "
                "FROM unnest(%s::text[]) AS k",
                (keys,),
            )
            conn.commit()

        with measure_costs(database_url) as costs:
            samples = time_calls(insert, batches, warmup=5)
        return samples, costs


def _cpu_bound_rate(per_batch: dict[str, float | None]) -> float | None:
    # Reports a second one container could track with one core for itself and one for
    # Postgres: the batch's larger CPU share bounds it.
    busiest = max(per_batch["client_cpu_ms"] or 0.0, per_batch["server_cpu_ms"] or 0.0)
    return round(BATCH * 1000 / busiest, 1) if busiest else None


def _container(
    urls: tuple[str, str, str], warm: dict[str, Any], batches: list[dict[str, Any]], start: Any
) -> dict[str, float]:
    # One tracker container in a process of its own: its own pool, warmed, then its partition's
    # batches as fast as it can once every container is ready.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    database_url, redis_url, prefix = urls
    wiring = Wiring(
        BenchServices(database_url, redis_url, prefix).settings(
            ws_management_endpoint="http://127.0.0.1:9"
        )
    )
    shared.wiring.get_wiring = lambda: wiring  # type: ignore[assignment]
    from functions.track_execution import handler

    with contextlib.redirect_stdout(io.StringIO()):
        handler.lambda_handler(warm, LocalLambdaContext("bench"))
        start.wait()
        cpu, began = time.process_time(), time.time()
        failures = sum(
            len(handler.lambda_handler(b, LocalLambdaContext("bench"))["batchItemFailures"])
            for b in batches
        )
        ended = time.time()
    wiring.database.close()
    return {
        "began": began,
        "ended": ended,
        "failures": failures,
        "cpu_s": time.process_time() - cpu,
    }


def parallel_containers(services: BenchServices, children: list[ChildOrder]) -> dict[str, Any]:
    """``CONTAINERS`` tracker containers (processes), each its partition of ``children``.

    The aggregate rate is every report over the span from the first container's start to the
    last one's end; a container's batches are its own partition's, as MSK hands them out.
    """
    per = len(children) // CONTAINERS
    parts = [children[i * per : (i + 1) * per] for i in range(CONTAINERS)]
    context = multiprocessing.get_context("spawn")
    urls = (services.database_url, services.redis_url, services.redis_prefix)
    with context.Manager() as manager, ProcessPoolExecutor(CONTAINERS, mp_context=context) as pool:
        start = manager.Event()
        futures = [
            pool.submit(
                _container,
                urls,
                msk_event([fill(c) for c in part[:BATCH]]),
                [
                    msk_event([fill(c) for c in part[i : i + BATCH]])
                    for i in range(BATCH, per, BATCH)
                ],
                start,
            )
            for part in parts
        ]
        time.sleep(3)  # every container imported and warmed
        start.set()
        runs = [f.result() for f in futures]
    reports = CONTAINERS * (per - BATCH)
    span = max(r["ended"] for r in runs) - min(r["began"] for r in runs)
    return {
        "containers": CONTAINERS,
        "reports": reports,
        "reports_per_s": round(reports / span, 1),
        "failures": sum(int(r["failures"]) for r in runs),
        "client_cpu_ms_per_batch": round(
            sum(r["cpu_s"] for r in runs) / (reports / BATCH) * 1000, 3
        ),
        "target_reports_per_s_ge_5000": reports / span >= 5000,
    }


def main() -> None:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    with bench_services() as services:
        wiring = Wiring(services.settings(ws_management_endpoint="http://127.0.0.1:9"))
        for broker in seed.seed_brokers():
            wiring.brokers.upsert(broker)
        for profile in seed.seed_profiles(utc_now()):
            wiring.profile_repository.upsert(profile)
        shared.wiring.get_wiring = lambda: wiring  # type: ignore[assignment]
        from functions.track_execution import handler

        children = make_children(
            wiring, MSK_REPORTS + EVENTBRIDGE_REPORTS + BATCH + MSK_REPORTS + CONTAINERS * BATCH
        )
        spare = children[MSK_REPORTS + EVENTBRIDGE_REPORTS + BATCH :]
        children = children[: MSK_REPORTS + EVENTBRIDGE_REPORTS + BATCH]
        batches = [
            msk_event([fill(c) for c in children[i : i + BATCH]])
            for i in range(0, MSK_REPORTS, BATCH)
        ]
        singles = [
            {**fill(c), "version": "0", "id": uuid.uuid4().hex}
            for c in children[MSK_REPORTS : MSK_REPORTS + EVENTBRIDGE_REPORTS]
        ]
        warm = msk_event([fill(c) for c in children[MSK_REPORTS + EVENTBRIDGE_REPORTS :]])
        with contextlib.redirect_stdout(io.StringIO()):
            # A warm container, as under steady load: the first batch's imports (the tracer's
            # X-Ray SDK, about a second) are a cold start, timed apart.
            started = time.perf_counter()
            handler.lambda_handler(warm, LocalLambdaContext("bench"))
            cold_batch_s = time.perf_counter() - started
            with measure_costs(services.database_url) as msk_costs:
                started = time.perf_counter()
                failures = sum(
                    len(handler.lambda_handler(b, LocalLambdaContext("bench"))["batchItemFailures"])
                    for b in batches
                )
                elapsed = time.perf_counter() - started
            with measure_costs(services.database_url) as eventbridge_costs:
                eventbridge = time_calls(
                    lambda i: handler.lambda_handler(singles[i], LocalLambdaContext("bench")),
                    EVENTBRIDGE_REPORTS - 50,
                    warmup=0,
                )
        with wiring.database.connection() as conn:
            row = conn.execute("SELECT count(*) AS n FROM execution_metrics").fetchone()
        stored = int(row["n"]) if row else 0
        parallel = parallel_containers(services, spare)
        floor, floor_costs = batch_floor(services.database_url, len(batches))
        wiring.database.close()
    results = {
        "msk_reports_per_s": round(MSK_REPORTS / elapsed, 1),
        "msk_batches": len(batches),
        "msk_failures": failures,
        "msk_cold_first_batch_ms": round(cold_batch_s * 1000, 1),
        "eventbridge_p95_ms": summary_ms(eventbridge)["p95_ms"],
        "eventbridge": summary_ms(eventbridge),
        "rows_stored": stored,
        # CPU and round trips per batch of 100: what contention barely moves (bench/costs.py).
        # The batch's CPU (client + server) bounds one container's rate: 1000 / that per s.
        "msk_per_batch": msk_costs.per(len(batches)),
        "msk_per_report": msk_costs.per(MSK_REPORTS),
        "eventbridge_per_report": eventbridge_costs.per(EVENTBRIDGE_REPORTS),
        "floor_per_batch": floor_costs.per(len(batches) + 5),
        "msk_cpu_bound_reports_per_s": _cpu_bound_rate(msk_costs.per(len(batches))),
        "floor_batch_ms": summary_ms(floor),
        "batch_p50_over_floor_p50": round(
            (elapsed / len(batches)) / (summary_ms(floor)["p50_ms"] / 1000), 2
        ),
        "symbols": SYMBOLS,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "target_reports_per_s_ge_5000": MSK_REPORTS / elapsed >= 5000,
        # MSK's own scaling: a poller (a container) per partition, here CONTAINERS at once on
        # the same 2 cores as Postgres and Redis.
        "msk_parallel": parallel,
    }
    write_result("track_execution", results)


if __name__ == "__main__":
    main()
