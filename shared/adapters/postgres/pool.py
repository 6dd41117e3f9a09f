"""psycopg 3 connection pool and the translation of driver errors into domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared.domain.errors import DataUnavailableError
from shared.settings import Settings


def connection_kwargs(settings: Settings, secret: dict[str, Any] | None = None) -> dict[str, Any]:
    """Connection parameters from the settings (and the Secrets Manager secret in AWS).

    Parameters
    ----------
    settings
        Validated settings; ``database_url`` wins when set (local mode, tests).
    secret
        The decoded database secret (``username``, ``password``) when running behind RDS Proxy.

    Returns
    -------
    dict[str, Any]
        Keyword arguments for :func:`psycopg.connect`, with ``conninfo``.
    """
    common: dict[str, Any] = {
        "connect_timeout": max(1, int(settings.db_connect_timeout_s)),
        "application_name": settings.service_name,
        # No server-side prepared statements: RDS Proxy pins a client to one database
        # connection for good once it prepares one (docs/capacity.md, "Connections").
        "prepare_threshold": None,
    }
    if settings.database_url is not None:
        return {"conninfo": settings.database_url.get_secret_value(), **common}
    if secret is None:
        raise ValueError("a database secret is needed when database_url is not set")
    return {
        "conninfo": "",
        "host": settings.db_host,
        "port": settings.db_port,
        "dbname": settings.db_name,
        "user": secret["username"],
        "password": secret["password"],
        "sslmode": "require",
        **common,
    }


def create_pool(settings: Settings, secret: dict[str, Any] | None = None) -> ConnectionPool:
    """A pool that opens lazily on first use, so nothing connects at import or cold start.

    Parameters
    ----------
    settings
        Validated settings (pool sizes, timeouts).
    secret
        The database secret in AWS; ``None`` with ``database_url``.

    Returns
    -------
    ConnectionPool
    """
    kwargs = connection_kwargs(settings, secret)
    conninfo = kwargs.pop("conninfo")
    statements = session_setup(settings)

    def configure(conn: psycopg.Connection[Any]) -> None:
        for statement in statements:
            conn.execute(statement)
        conn.commit()

    return ConnectionPool(
        conninfo,
        kwargs=kwargs,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=settings.db_connect_timeout_s,
        configure=configure if statements else None,
        open=False,
        name="order-router",
    )


def session_setup(settings: Settings) -> list[str]:
    """What a new connection runs before its first use: session settings, direct links only.

    A statement that hangs must fail fast rather than hold a Lambda for its whole timeout, so
    ``statement_timeout`` is set per session on a direct connection (local mode, tests). Behind
    RDS Proxy (no ``database_url``) a ``SET`` would pin the client to one database connection
    for the rest of its life; there the proxy's ``InitQuery`` sets the same timeout on every
    database connection it opens (infra/data.py), and the client sends no session state.
    """
    if settings.database_url is None:
        return []
    return [f"SET statement_timeout = {int(settings.db_statement_timeout_ms)}"]


class Database:
    """A pool plus error translation: the one way adapters talk to Postgres."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._opened = False

    @property
    def pool(self) -> ConnectionPool:
        """The underlying pool."""
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection in a transaction, committed on success, rolled back on error.

        Raises
        ------
        DataUnavailableError
            When Postgres cannot be reached or the pool has no connection in time.
        """
        with translate_errors():
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True
            with self._pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]
                yield conn  # type: ignore[misc]

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection in autocommit, for reads of one statement each.

        A single ``SELECT`` sees one snapshot either way; in autocommit it needs no ``COMMIT``,
        a round trip saved per read (an order's risk state and broker links: two per order).
        Autocommit is switched off again before the connection goes back to the pool, and a
        connection on which that fails is closed (the pool then drops it), so no later
        transaction can ever run in autocommit. Nothing here pins an RDS Proxy session.

        Raises
        ------
        DataUnavailableError
            When Postgres cannot be reached or the pool has no connection in time.
        """
        with self.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                try:
                    conn.autocommit = False
                except psycopg.Error:
                    conn.close()

    def ping(self) -> bool:
        """True when ``SELECT 1`` answers."""
        try:
            with self.connection() as conn:
                conn.execute("SELECT 1")
        except DataUnavailableError:
            return False
        return True

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()
        self._opened = False


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn connection-level driver errors into :class:`DataUnavailableError`.

    Integrity errors and programming errors are not translated here: repositories handle the
    ones they expect (a duplicate key) and anything else is a bug that must surface.
    """
    try:
        yield
    except (psycopg.OperationalError, psycopg.errors.QueryCanceled) as exc:
        raise DataUnavailableError(f"postgres unavailable: {exc.__class__.__name__}") from exc
