"""Schema migrations with yoyo-migrations: versioned SQL files in ``shared/migrations/``.

yoyo records what it applied in its own tables and takes a lock, so running the migrations again
(every deploy, every ``make run``) is a no-op and two runners never apply the same file twice.
"""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


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


def migration_ids() -> list[str]:
    """Ids of every migration shipped with the code, in the order they apply."""
    return [m.id for m in read_migrations(str(MIGRATIONS_DIR))]
