"""Test harness: throwaway PostgreSQL and Redis servers, a clean database and key prefix per test.

``DATABASE_URL`` (a role that may CREATE DATABASE) and ``REDIS_URL`` point the suite at existing
servers instead; otherwise each session starts its own from the OS packages on free ports and
never touches the machine's services on 5432/6379. A server that cannot start fails the run
with the reason (never a skip).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from local.services import EmbeddedPostgres, EmbeddedRedis, scratch_database
from shared.adapters.postgres.migrations import apply_migrations
from shared.adapters.postgres.pool import Database, create_pool
from shared.settings import Settings


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of the session's PostgreSQL server."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("postgres")) / "data").start()
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_database(postgres_admin_url: str) -> Iterator[str]:
    """URL of a migrated database that every test database is copied from (a file copy)."""
    with scratch_database(postgres_admin_url, "router_template") as url:
        apply_migrations(url)
        yield url


@pytest.fixture
def database_url(postgres_admin_url: str, template_database: str) -> Iterator[str]:
    """URL of a fresh, fully migrated database of this test's own."""
    with scratch_database(postgres_admin_url, "router_test", template=template_database) as url:
        yield url


@pytest.fixture
def empty_database_url(postgres_admin_url: str) -> Iterator[str]:
    """URL of a new database with no schema at all (for migration tests)."""
    with scratch_database(postgres_admin_url, "router_empty") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the session's Redis server."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedRedis().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(database_url: str, redis_url: str, redis_prefix: str) -> Settings:
    """Settings of a service wired to this test's database and key prefix."""
    return Settings(
        stage="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        db_pool_max=10,
        # Tests run at any hour; the risk suites enforce the hours with a clock of their own.
        enforce_market_hours=False,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """A connection pool on this test's database."""
    database = Database(create_pool(settings))
    yield database
    database.close()
