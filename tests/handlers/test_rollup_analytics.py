"""rollup_analytics: the scheduled roll-up, and the analytics API answered from it."""

from __future__ import annotations

from typing import Any

from functions.rollup_analytics import handler as rollup_analytics
from functions.route_order import handler as route_order
from functions.track_execution import handler as track_execution
from local.apigw import LocalLambdaContext
from shared.domain.contracts import DetailType
from shared.wiring import Wiring
from tests.handlers.support import API, EventSink, call

ANALYTICS = f"{API}/analytics/execution"


def execute_an_order(aws: EventSink) -> None:
    status, _, _ = call(
        route_order,
        "POST",
        f"{API}/orders/smart",
        body={"symbol": "RELIANCE", "side": "BUY", "quantity": 300, "orderType": "MARKET"},
    )
    assert status == 200
    for event in aws.drain():
        if event["detail-type"] == DetailType.EXECUTION_REPORTED:
            track_execution.lambda_handler(event, LocalLambdaContext("test"))


def backdate(wiring: Wiring, hours: int) -> None:
    with wiring.database.connection() as conn:
        for table in ("orders", "child_orders", "execution_metrics"):
            conn.execute(
                f"UPDATE {table} SET created_at = created_at - make_interval(hours => %s)",
                (hours,),
            )


def rollup_rows(wiring: Wiring) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        rows = conn.execute(
            "SELECT * FROM execution_rollups ORDER BY grain, bucket_start, broker_id, strategy"
        ).fetchall()
    return [{k: v for k, v in r.items() if k != "rolled_at"} for r in rows]


def rollup() -> dict[str, Any]:
    result: dict[str, Any] = rollup_analytics.lambda_handler({}, LocalLambdaContext("test"))
    return result


def test_the_analytics_are_the_same_before_and_after_the_roll_up(
    wiring: Wiring, aws: EventSink
) -> None:
    # GIVEN an order routed and executed three hours ago
    execute_an_order(aws)
    backdate(wiring, 3)
    # WHEN the analytics are read from the raw rows, then the roll-up runs and they are read
    #      again (another window, so the one-minute cache does not answer)
    _, before, _ = call(route_order, "GET", ANALYTICS, query={"days": "7"})
    first = rollup()
    rolled = rollup_rows(wiring)
    rollup()
    status, after, _ = call(route_order, "GET", ANALYTICS, query={"days": "8"})
    # THEN the roll-up wrote the hour (the orders row and a row per broker), and a second run
    #      changed nothing
    assert first["hourlyRows"] >= 2
    assert rollup_rows(wiring) == rolled
    # AND the answer is the same, with p50/p95 per broker and per strategy
    assert status == 200
    assert {**before, "days": 8} == after
    assert after["summary"]["childExecutions"] >= 1
    for breakdown in (*after["byBroker"], *after["byStrategy"]):
        if breakdown["childExecutions"]:
            assert breakdown["p50LatencyMs"] is not None
            assert breakdown["p95LatencyMs"] >= breakdown["p50LatencyMs"]


def test_a_broker_without_executions_has_null_percentiles(wiring: Wiring, aws: EventSink) -> None:
    # GIVEN an order whose children were placed but never reported on
    status, _, _ = call(
        route_order,
        "POST",
        f"{API}/orders/smart",
        body={"symbol": "RELIANCE", "side": "BUY", "quantity": 300, "orderType": "MARKET"},
    )
    assert status == 200
    aws.drain()
    backdate(wiring, 2)
    rollup()
    # WHEN the analytics are read
    _, body, _ = call(route_order, "GET", ANALYTICS, query={"days": "1"})
    # THEN the routed quantity counts, and what was never measured is null
    assert body["summary"]["orders"] == 1
    assert body["summary"]["orderedQuantity"] == 300
    assert body["summary"]["p95LatencyMs"] is None
    assert all(b["p50LatencyMs"] is None for b in body["byBroker"])


def test_days_outside_one_to_365_are_refused(wiring: Wiring) -> None:
    # GIVEN the analytics route
    # WHEN the window is 0, 366 or not a number
    answers = [
        call(route_order, "GET", ANALYTICS, query={"days": days})[0]
        for days in ("0", "366", "-1", "a year")
    ]
    # THEN each is 422 and a year is fine
    assert answers == [422, 422, 422, 422]
    assert call(route_order, "GET", ANALYTICS, query={"days": "365"})[0] == 200


def test_an_empty_database_rolls_nothing(wiring: Wiring) -> None:
    # GIVEN no execution at all
    # WHEN the roll-up runs
    result = rollup()
    # THEN nothing is rolled and no watermark is invented
    assert (result["rolledFrom"], result["hourlyRows"]) == (None, 0)
    assert wiring.rollup_job.run().rolled_to is None
