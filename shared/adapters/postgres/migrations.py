"""Schema migrations with yoyo-migrations: versioned SQL files in ``shared/migrations/``.

yoyo records what it applied in its own tables and takes a lock, so running the migrations again
(every deploy, every ``make run``) is a no-op and two runners never apply the same file twice.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

from shared.settings import APP_DB_ROLE

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
APP_ROLE = APP_DB_ROLE
"""The services' login role: reads and writes rows, owns nothing, cannot change the schema."""
APP_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE"
"""No DELETE or TRUNCATE: the services never remove a row (orders and reports are an audit)."""
_YOYO_TABLES = ("_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock")


def _yoyo_url(database_url: str) -> str:
    # yoyo picks its driver from the scheme: "postgresql+psycopg" is psycopg 3.
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("database_url must be a postgresql:// URL")
    return f"postgresql+psycopg://{rest}"


def apply_migrations(database_url: str, *, up_to: str | None = None) -> list[str]:
    """Apply every pending migration, in file-name order.

    Parameters
    ----------
    database_url
        ``postgresql://`` URL of the target database.
    up_to
        Apply only migrations whose id sorts at or before this one (e.g. ``"V002"``); tests use it
        to compare the specification's V2 schema exactly.

    Returns
    -------
    list[str]
        Ids of the migrations applied by this call (empty when the schema was current).
    """
    backend = get_backend(_yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            if up_to is not None:
                pending = pending.filter(lambda m: m.id.split("__", 1)[0] <= up_to)
            backend.apply_migrations(pending)
            return [m.id for m in pending]
    finally:
        # yoyo keeps its connection open; a lingering session would block CREATE DATABASE
        # ... TEMPLATE and DROP DATABASE on this database.
        backend.connection.close()


def ensure_app_role(database_url: str, *, username: str, password: str) -> None:
    """Create or update the services' login role and grant it row access only.

    Run by the ``migrate`` function after the migrations, as the schema owner, on every deploy,
    so tables added by later migrations are granted too. The grants go to :data:`APP_ROLE`;
    the secret's ``username`` is either that role or the clone that multi-user rotation creates
    as a member of it (so it inherits the grants), and only the role the secret currently names
    gets the secret's password.

    Parameters
    ----------
    database_url
        ``postgresql://`` URL of the database as its owner.
    username, password
        The current credentials of the application secret.
    """
    role = sql.Identifier(APP_ROLE)
    with psycopg.connect(database_url, autocommit=True) as conn:
        if (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
            is None
        ):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
        if username == APP_ROLE:
            # Literal, not a parameter: utility statements such as ALTER ROLE take no binds.
            conn.execute(
                sql.SQL(
                    "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                ).format(role, sql.Literal(password))
            )
        database = sql.Identifier(conn.info.dbname)
        for statement in (
            "GRANT CONNECT ON DATABASE {database} TO {role}",
            "GRANT USAGE ON SCHEMA public TO {role}",
            "REVOKE CREATE ON SCHEMA public FROM {role}",
            f"GRANT {APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {{role}}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            # V012's roll-up, partition and retention functions (SECURITY DEFINER): the role
            # runs them, it cannot delete rows or create and drop tables itself.
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}",
        ):
            conn.execute(sql.SQL(statement).format(database=database, role=role))
        existing = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            (list(_YOYO_TABLES),),
        ).fetchall()
        for (table,) in existing:
            # The migration bookkeeping is the owner's alone.
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), role))
