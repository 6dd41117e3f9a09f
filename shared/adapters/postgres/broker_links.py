"""Traders' broker connections and OAuth states in Postgres (:class:`shared.ports.BrokerLinkStore`).

Tokens are stored only sealed (``token_ciphertext``, ``wrapped_key``, ``key_id``); a revoked
connection keeps none of them (the table's check constraint says so too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.pool import Database
from shared.domain.broker_links import BrokerLink, LinkStatus
from shared.ports import SealedSecret, StoredLink

_COLUMNS = """user_id, broker_id, status, account_hint, token_ciphertext, wrapped_key, key_id,
    linked_at, expires_at, updated_at"""

SELECT_USER = f"SELECT {_COLUMNS} FROM broker_connections WHERE user_id = %s ORDER BY broker_id"
# Read with every order's links (one round trip): the operator's status never comes from a cache.
SELECT_HELD = (
    "SELECT broker_id, routing_status FROM brokers WHERE enabled AND routing_status <> 'ACTIVE'"
)
SELECT_ONE = f"SELECT {_COLUMNS} FROM broker_connections WHERE user_id = %s AND broker_id = %s"
UPSERT = """
INSERT INTO broker_connections (user_id, broker_id, status, account_hint, token_ciphertext,
    wrapped_key, key_id, linked_at, expires_at, updated_at)
VALUES (%(user_id)s, %(broker_id)s, %(status)s, %(account_hint)s, %(ciphertext)s,
    %(wrapped_key)s, %(key_id)s, %(linked_at)s, %(expires_at)s, %(updated_at)s)
ON CONFLICT (user_id, broker_id) DO UPDATE SET
    status = EXCLUDED.status, account_hint = EXCLUDED.account_hint,
    token_ciphertext = EXCLUDED.token_ciphertext, wrapped_key = EXCLUDED.wrapped_key,
    key_id = EXCLUDED.key_id, linked_at = EXCLUDED.linked_at, expires_at = EXCLUDED.expires_at,
    updated_at = EXCLUDED.updated_at
"""
SET_STATUS = f"""
UPDATE broker_connections SET status = %(status)s, updated_at = %(at)s,
    token_ciphertext = CASE WHEN %(erase)s THEN NULL ELSE token_ciphertext END,
    wrapped_key = CASE WHEN %(erase)s THEN NULL ELSE wrapped_key END,
    key_id = CASE WHEN %(erase)s THEN NULL ELSE key_id END
WHERE user_id = %(user_id)s AND broker_id = %(broker_id)s
RETURNING {_COLUMNS}
"""
INSERT_STATE = """
INSERT INTO broker_link_states (state_digest, user_id, broker_id, expires_at)
VALUES (%s, %s, %s, %s)
"""
# Deleting is what makes a state single-use: two callbacks racing get one row between them.
TAKE_STATE = """
DELETE FROM broker_link_states WHERE state_digest = %s
RETURNING user_id, broker_id, expires_at
"""
SELECT_ALL = f"""
SELECT {_COLUMNS} FROM broker_connections
WHERE (%(broker_id)s::text IS NULL OR broker_id = %(broker_id)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY updated_at DESC, user_id, broker_id
LIMIT %(limit)s
"""
PURGE_STATES = "DELETE FROM broker_link_states WHERE expires_at < now()"


def _link(row: dict[str, Any]) -> BrokerLink:
    return BrokerLink(
        user_id=row["user_id"],
        broker_id=row["broker_id"],
        status=LinkStatus(row["status"]),
        linked_at=row["linked_at"],
        expires_at=row["expires_at"],
        account_hint=row["account_hint"],
        updated_at=row["updated_at"],
    )


def _sealed(row: dict[str, Any]) -> SealedSecret | None:
    if row["token_ciphertext"] is None or row["wrapped_key"] is None:
        return None
    return SealedSecret(
        ciphertext=bytes(row["token_ciphertext"]),
        wrapped_key=bytes(row["wrapped_key"]),
        key_id=row["key_id"],
    )


class PostgresBrokerLinkStore:
    """:class:`shared.ports.BrokerLinkStore` over the connections and OAuth states tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_for_user(self, user_id: str) -> list[BrokerLink]:
        """Every connection of ``user_id``."""
        with self._db.reading() as conn:
            return [_link(r) for r in conn.execute(SELECT_USER, (user_id,)).fetchall()]

    def routing_access(self, user_id: str) -> tuple[list[BrokerLink], dict[str, str]]:
        """The links of ``user_id`` and the brokers an operator holds, in one round trip.

        Two single-statement reads in autocommit, pipelined: no COMMIT round trip either.
        """
        with self._db.reading() as conn:
            with conn.pipeline():
                links = conn.execute(SELECT_USER, (user_id,))
                held = conn.execute(SELECT_HELD)
            return (
                [_link(r) for r in links.fetchall()],
                {r["broker_id"]: r["routing_status"] for r in held.fetchall()},
            )

    def get(self, user_id: str, broker_id: str) -> StoredLink | None:
        """One connection with its sealed credentials."""
        with self._db.connection() as conn:
            row = conn.execute(SELECT_ONE, (user_id, broker_id)).fetchone()
        return StoredLink(link=_link(row), sealed=_sealed(row)) if row else None

    def save(self, link: BrokerLink, sealed: SealedSecret) -> None:
        """Insert or replace the connection."""
        params = {
            **link.model_dump(),
            "status": link.status.value,
            "ciphertext": sealed.ciphertext,
            "wrapped_key": sealed.wrapped_key,
            "key_id": sealed.key_id,
        }
        with self._db.connection() as conn:
            conn.execute(UPSERT, params)

    def set_status(
        self, user_id: str, broker_id: str, status: LinkStatus, *, at: datetime, erase: bool
    ) -> BrokerLink | None:
        """Change the status (``erase`` drops the credentials)."""
        params = {
            "status": status.value,
            "at": at,
            "erase": erase,
            "user_id": user_id,
            "broker_id": broker_id,
        }
        with self._db.connection() as conn:
            row = conn.execute(SET_STATUS, params).fetchone()
        return _link(row) if row else None

    def add_state(self, digest: str, user_id: str, broker_id: str, *, expires_at: datetime) -> None:
        """Remember an issued state (and forget the expired ones)."""
        with self._db.connection() as conn:
            conn.execute(PURGE_STATES)
            conn.execute(INSERT_STATE, (digest, user_id, broker_id, expires_at))

    def take_state(self, digest: str, *, now: datetime) -> tuple[str, str] | None:
        """Consume a state: its owner, unless unknown, used or expired."""
        with self._db.connection() as conn:
            row = conn.execute(TAKE_STATE, (digest,)).fetchone()
        if row is None or row["expires_at"] <= now:
            return None
        return row["user_id"], row["broker_id"]

    def list_all(
        self, *, limit: int, broker_id: str | None = None, status: LinkStatus | None = None
    ) -> list[BrokerLink]:
        """Every trader's connections, most recently changed first (no credentials read)."""
        params = {
            "limit": limit,
            "broker_id": broker_id,
            "status": status.value if status else None,
        }
        with self._db.connection() as conn:
            return [_link(r) for r in conn.execute(SELECT_ALL, params).fetchall()]
