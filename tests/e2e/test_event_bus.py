"""The local event bus with ``--workers 2``: batches to two tracker containers, a stop that loses
nothing (docs/execution-tracking.md, "Local mode").

A real ``order-router run``: smart orders are filled by the paper brokers, whose postbacks reach
the bus as ``ExecutionReported`` events and are tracked in MSK-shaped batches; then a burst of
events put right before Ctrl-C is either delivered or spooled, and the next run on the same
data directory delivers what was spooled.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config

from local.runtime import DATABASE
from shared.domain.contracts import execution_reported_event
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import Exchange, Side
from tests.e2e.support import PAPER_BEHAVIOUR, Runtime, start_runtime, stop_runtime
from tests.e2e.test_local_mode import settled_order, submit, user

WORKERS = 2
BURST = 400
STOPPED = re.compile(
    r"stopped: (\d+) events delivered, (\d+) dead-lettered, (\d+) spooled for the next start"
)


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    run = start_runtime(tmp_path_factory.mktemp("order-router-bus"), f"--workers={WORKERS}")
    try:
        with psycopg.connect(_url(run), autocommit=True) as conn:
            conn.execute(
                "UPDATE brokers SET adapter_config = adapter_config || %s::jsonb "
                "WHERE adapter = 'paper'",
                (json.dumps(PAPER_BEHAVIOUR),),
            )
        yield run
    finally:
        stop_runtime(run)


def _url(run: Runtime) -> str:
    return f"postgresql://postgres@127.0.0.1:{run.pg_port}/{DATABASE}"


def _events_client(run: Runtime) -> Any:
    keys = run.internal_credentials()
    return boto3.session.Session().client(
        "events",
        endpoint_url=run.internal,
        region_name="ap-south-1",
        aws_access_key_id=keys["accessKeyId"],
        aws_secret_access_key=keys["secretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


def _report_entry(name: str) -> dict[str, Any]:
    # A valid fill of a child nobody sent: tracked as unknown_child (delivered, nothing stored).
    report = ExecutionReport(
        broker_id="zerodha",
        broker_order_id=f"B-{name}",
        child_order_id=f"child-{name}",
        status=ExecutionStatus.FILLED,
        quantity=10,
        filled_quantity=10,
        average_price=Decimal("1295.75"),
        symbol="RELIANCE",
        exchange=Exchange.NSE,
        side=Side.BUY,
        event_time=datetime.now(UTC),
    )
    event = execution_reported_event(f"ord-{name}", "t-bus", report, uuid.uuid4())
    return {
        "Source": event.source,
        "DetailType": event.detail_type,
        "Detail": json.dumps(event.detail, default=str),
        "EventBusName": "order-router",
    }


def _stopped_line(run: Runtime) -> tuple[int, int, int]:
    [match] = STOPPED.findall(run.output())
    delivered, dead, spooled = (int(x) for x in match)
    return delivered, dead, spooled


def test_fills_of_concurrent_orders_are_tracked_through_both_tracker_containers(
    pooled: Runtime,
) -> None:
    # GIVEN 6 smart orders sent at once (partial fills: several reports per child)
    trader = user()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        orders = list(pool.map(lambda _: submit(pooled, trader), range(6)))
    # WHEN their fills come back through the bus
    views = [settled_order(pooled, trader, o["orderId"]) for o in orders]
    # THEN every child reached a terminal state, and each report is stored once
    assert all(c["status"] for v in views for c in v["childOrders"])
    with psycopg.connect(_url(pooled)) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT report_key) FROM execution_metrics "
            "WHERE order_id = ANY(%s)",
            ([o["orderId"] for o in orders],),
        ).fetchone()
    assert rows is not None
    assert rows[0] == rows[1] > 0


def test_a_stop_with_events_queued_loses_none_and_the_next_run_delivers_the_spool(
    pooled: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN a burst of execution reports put on the bus (unknown children: cheap to track)
    events = _events_client(pooled)
    tag = uuid.uuid4().hex[:8]
    for start in range(0, BURST, 10):
        result = events.put_events(
            Entries=[_report_entry(f"{tag}-{n}") for n in range(start, start + 10)]
        )
        assert result["FailedEntryCount"] == 0
    # WHEN the run is stopped (Ctrl-C) right away
    stop_runtime(pooled)
    # THEN nothing was dropped: every event was delivered, or spooled to the data directory
    delivered, dead, spooled = _stopped_line(pooled)
    spool = pooled.data_dir / "event-bus-spool.jsonl"
    assert dead == 0
    assert delivered + spooled >= BURST
    assert (spool.read_text().count("\n") if spool.exists() else 0) == spooled
    # AND a new run on the same data directory delivers the spool and removes it
    again = start_runtime(pooled.data_dir, f"--workers={WORKERS}")
    stop_runtime(again)
    delivered_again, dead_again, spooled_again = _stopped_line(again)
    assert delivered_again >= spooled
    assert dead_again == spooled_again == 0
    assert not spool.exists()
