"""Migrations: applied once, re-run as a no-op, and V2 equal to the specification's DDL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from yoyo import read_migrations

from local.services import scratch_database
from shared.adapters.postgres.migrations import MIGRATIONS_DIR, apply_migrations

SPEC_DDL = Path(__file__).parents[1] / "spec" / "V2__Add_intelligent_routing_tables.sql"
SPEC_TABLES = (
    "broker_execution_profiles",
    "order_routing_decisions",
    "order_allocations",
    "execution_metrics",
)
# Columns our later migrations add to the specification's tables, and nothing else.
OUR_ADDITIONS = {
    "broker_execution_profiles": {
        "sample_count",
        "volatility_bps",
        "last_price",
        "evidence",
        "uncertainty",
        "market_updated_at",
    },
    "order_routing_decisions": {
        "expected_price",
        "expected_fill_probability",
        "expected_charges_inr",
        "expected_total_cost_inr",
        "fallback_broker_ids",
        "broker_scores",
        "decision",
    },
    "order_allocations": {"quantity", "slices", "expected_cost_inr", "cascaded_from"},
    "execution_metrics": {
        "user_id",
        "child_order_id",
        "report_key",
        "status",
        "filled_quantity",
        "fill_price",
        "charges_inr",
    },
}


# V012 partitions execution_metrics by created_at: a partition key in the primary key cannot be
# NULL, and partitions and hourly roll-ups are in UTC, which a naive timestamp is not.
PARTITIONING_CHANGES = {
    "execution_metrics": {
        "created_at": ("timestamp with time zone", None, None, None, "now()", "NO"),
    },
}


def columns(url: str, table: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT column_name, data_type, character_maximum_length, numeric_precision,
                   numeric_scale, column_default, is_nullable
            FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = %s
            """,
            (table,),
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def indexes(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s",
            (table,),
        ).fetchall()
    return {r[0] for r in rows}


def test_migrations_apply_in_order_and_rerun_is_a_noop(empty_database_url: str) -> None:
    # GIVEN an empty database
    # WHEN the migrations run twice
    first = apply_migrations(empty_database_url)
    second = apply_migrations(empty_database_url)
    # THEN the first run applies every migration in order and the second applies nothing
    assert first == [m.id for m in read_migrations(str(MIGRATIONS_DIR))]
    assert first[:3] == [
        "V001__base",
        "V002__add_intelligent_routing_tables",
        "V003__child_orders_outbox_learning",
    ]
    assert second == []


@pytest.fixture
def spec_database_url(empty_database_url: str) -> str:
    # The specification's DDL verbatim in a database of its own.
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(SPEC_DDL.read_text())
    return empty_database_url


@pytest.fixture
def v2_database_url(postgres_admin_url: str) -> Iterator[str]:
    with scratch_database(postgres_admin_url, "router_v2") as url:
        apply_migrations(url, up_to="V002")
        yield url


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_v2_tables_equal_the_specification_ddl(
    table: str, spec_database_url: str, v2_database_url: str
) -> None:
    # GIVEN a database with the specification's DDL and one migrated up to V2
    # WHEN their columns and indexes are read from the catalogue
    spec_columns = columns(spec_database_url, table)
    ours = columns(v2_database_url, table)
    # THEN every column has the same type, size, precision, scale, default and nullability
    assert spec_columns, f"{table} missing from the specification database"
    assert ours == spec_columns
    # AND the indexes (including the unique (broker_id, symbol)) are the same
    assert indexes(v2_database_url, table) == indexes(spec_database_url, table)


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_later_migrations_only_add_to_the_specification_tables(
    table: str, spec_database_url: str, database_url: str
) -> None:
    # GIVEN the specification's tables and a fully migrated database
    spec_columns = columns(spec_database_url, table)
    # WHEN the migrated table's columns are read
    ours = columns(database_url, table)
    # THEN every specification column is unchanged but for partitioning's, the extra ones are
    #      exactly ours
    expected = {**spec_columns, **PARTITIONING_CHANGES.get(table, {})}
    assert {name: ours[name] for name in spec_columns} == expected
    assert set(ours) - set(spec_columns) == OUR_ADDITIONS[table]
    # AND every specification index is kept (on a partitioned table: on each partition, the
    #     primary key with the partition key)
    ours_indexes = {
        i.replace(" ON ONLY ", " ON ").replace("(id, created_at)", "(id)")
        for i in indexes(database_url, table)
    }
    assert indexes(spec_database_url, table) <= ours_indexes
