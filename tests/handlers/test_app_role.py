"""The services run as ``router_app``: rows in and out, and nothing else."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from functions.rollup_analytics import handler as rollup_analytics
from functions.route_order import handler as route_order
from functions.track_execution import handler as track_execution
from local.apigw import LocalLambdaContext
from shared.adapters.postgres.migrations import APP_ROLE, ensure_app_role
from shared.domain.contracts import DetailType
from shared.settings import Settings
from tests.handlers.support import API, EventSink, call, handler_settings


def as_user(url: str, user: str) -> str:
    """``url`` with another user (the throwaway server trusts local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
def app_settings(settings: Settings, database_url: str) -> Settings:
    """The handlers' settings, connecting as the application role the deploy creates."""
    ensure_app_role(database_url, username=APP_ROLE, password="not-checked-locally")
    return handler_settings(settings, database_url=as_user(database_url, APP_ROLE))


@pytest.mark.usefixtures("wiring")
def test_the_whole_order_loop_runs_as_the_app_role(aws: EventSink) -> None:
    # GIVEN brokers and profiles seeded as the app role (the wiring fixture)
    # WHEN an order is routed and executed, and its fills are tracked
    status, body, _ = call(
        route_order,
        "POST",
        f"{API}/orders/smart",
        body={"symbol": "RELIANCE", "side": "BUY", "quantity": 100, "orderType": "MARKET"},
    )
    reports = [e for e in aws.drain() if e["detail-type"] == DetailType.EXECUTION_REPORTED]
    outcomes = [
        track_execution.lambda_handler(e, LocalLambdaContext("test"))["outcome"] for e in reports
    ]
    analytics_status, analytics, _ = call(route_order, "GET", f"{API}/analytics/execution")
    # THEN every step had the rights it needed
    assert status == 200
    assert body["status"] == "ROUTED"
    assert reports
    assert set(outcomes) == {"recorded"}
    assert analytics_status == 200
    assert analytics["summary"]["orders"] == 1


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM orders",
        "TRUNCATE execution_metrics",
        "DROP TABLE child_orders",
        "ALTER TABLE orders ADD COLUMN x int",
        "CREATE TABLE sneaky (id int)",
        "UPDATE _yoyo_migration SET migration_hash = 'x'",
        "DELETE FROM execution_rollups",
        "DROP TABLE execution_metrics_default",
        "CREATE TABLE execution_metrics_p209901 PARTITION OF execution_metrics "
        "FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
    ],
)
def test_the_app_role_cannot_remove_rows_or_change_the_schema(
    database_url: str, statement: str
) -> None:
    # GIVEN the application role on a migrated database
    ensure_app_role(database_url, username=APP_ROLE, password="not-checked-locally")
    # WHEN it tries to delete, truncate or change the schema
    # THEN Postgres refuses
    with (
        psycopg.connect(as_user(database_url, APP_ROLE)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


@pytest.mark.usefixtures("wiring")
def test_the_roll_up_job_runs_as_the_app_role(aws: EventSink, wiring: Any) -> None:
    # GIVEN an order executed three hours ago, stored as the app role
    call(
        route_order,
        "POST",
        f"{API}/orders/smart",
        body={"symbol": "RELIANCE", "side": "BUY", "quantity": 100, "orderType": "MARKET"},
    )
    for event in aws.drain():
        if event["detail-type"] == DetailType.EXECUTION_REPORTED:
            track_execution.lambda_handler(event, LocalLambdaContext("test"))
    with wiring.database.connection() as conn:
        for table in ("orders", "child_orders", "execution_metrics"):
            conn.execute(f"UPDATE {table} SET created_at = created_at - interval '3 hours'")
    # WHEN the roll-up job runs as the app role (partitions, roll-up, retention)
    result = rollup_analytics.lambda_handler({}, LocalLambdaContext("test"))
    # THEN it rolled the hour through V012's functions
    assert result["hourlyRows"] >= 2
