"""The pool sends RDS Proxy nothing that pins: no session SET behind it, no prepared statements."""

from __future__ import annotations

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
