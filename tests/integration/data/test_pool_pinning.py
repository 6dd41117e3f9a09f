"""The pool sends RDS Proxy nothing that pins: no session SET behind it, no prepared statements."""

from __future__ import annotations

import psycopg
import pytest

from shared.adapters.postgres.pool import Database, connection_kwargs, session_setup
from shared.settings import Settings

SECRET = {"username": "router_app", "password": "x"}
ARN = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:db-app"


def test_behind_the_proxy_a_connection_sets_nothing() -> None:
    # GIVEN the settings of a function behind RDS Proxy (host and secret, no database_url)
    settings = Settings(
        stage="test",
        db_host="proxy.example",
        db_secret_arn=ARN,
        db_statement_timeout_ms=1500,
    )
    # WHEN the pool's per-connection setup and connection parameters are built
    setup = session_setup(settings)
    kwargs = connection_kwargs(settings, SECRET)
    # THEN no SET is sent (the proxy's InitQuery sets the timeout) and nothing is ever prepared
    assert setup == []
    assert kwargs["prepare_threshold"] is None
    assert kwargs["sslmode"] == "require"


def test_a_direct_connection_sets_the_timeout_and_prepares_nothing(db: Database) -> None:
    # GIVEN a direct connection (local mode, tests: database_url)
    # WHEN a statement runs many times on one pooled connection
    with db.connection() as conn:
        for _ in range(10):
            conn.execute("SELECT 1").fetchone()
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        prepared = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()
    # THEN the session has the statement timeout, and no statement was prepared server-side
    assert timeout is not None
    assert timeout["statement_timeout"] == "2s"
    assert prepared is not None
    assert prepared["n"] == 0


def test_without_a_secret_behind_the_proxy_there_is_no_connection() -> None:
    # GIVEN proxy settings and no secret WHEN parameters are built THEN it refuses
    settings = Settings(stage="test", db_host="proxy.example", db_secret_arn=ARN)
    with pytest.raises(ValueError, match="secret"):
        connection_kwargs(settings, None)


def test_a_read_commits_nothing_and_leaves_no_autocommit_behind(db: Database) -> None:
    # GIVEN the pool's read connection (one statement per read, as the risk state's)
    with db.reading() as conn:
        # WHEN a SELECT runs
        row = conn.execute("SELECT 1 AS one").fetchone()
        # THEN no transaction is left open for a COMMIT round trip to close
        assert row == {"one": 1}
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # AND the next user of the pooled connection gets a transaction again
    with db.connection() as conn:
        assert not conn.autocommit
        conn.execute("SELECT 1")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


def test_a_read_connection_broken_on_the_way_is_never_reused(db: Database) -> None:
    # GIVEN a read whose connection dies inside it (autocommit cannot be switched back)
    with db.reading() as conn:
        conn.close()
    # WHEN the pool is used again
    with db.connection() as fresh:
        # THEN it hands out a working connection in a transaction, not the broken one
        assert fresh is not conn
        assert not fresh.autocommit
        assert fresh.execute("SELECT 1 AS one").fetchone() == {"one": 1}
