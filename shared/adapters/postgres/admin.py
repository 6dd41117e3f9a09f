"""Broker administration in Postgres: ``brokers`` (routing status) and ``broker_audit`` (V008)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.adapters.postgres.brokers import _COLUMNS as BROKER_COLUMNS
from shared.adapters.postgres.brokers import UPSERT, broker_from_row
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import _PROFILE_SELECT, profile_from_row
from shared.domain.admin import (
    AuditAction,
    AuditEntry,
    BrokerAdminView,
    BrokerStatusMessage,
    BrokerUpdate,
    RoutingStatus,
    StatusChange,
)
from shared.domain.brokers import BrokerConfig
from shared.domain.errors import ConflictError, NotFoundError
from shared.domain.models import BrokerProfile

_ADMIN_COLUMNS = f"{BROKER_COLUMNS}, routing_status, status_reason, status_changed_at"
SELECT_ALL = f"SELECT {_ADMIN_COLUMNS} FROM brokers ORDER BY broker_id"
SELECT_FOR_UPDATE = f"SELECT {_ADMIN_COLUMNS} FROM brokers WHERE broker_id = %s FOR UPDATE"
INSERT_NEW = UPSERT.split("ON CONFLICT")[0] + "ON CONFLICT (broker_id) DO NOTHING RETURNING 1"
SET_STATUS = """
UPDATE brokers SET routing_status = %(status)s, status_reason = %(reason)s,
    status_changed_at = now(), updated_at = now()
WHERE broker_id = %(broker_id)s
RETURNING status_changed_at
"""
INSERT_AUDIT = """
INSERT INTO broker_audit (broker_id, action, old_status, new_status, reason, changes, actor)
VALUES (%(broker_id)s, %(action)s, %(old_status)s, %(new_status)s, %(reason)s, %(changes)s,
    %(actor)s)
RETURNING id, broker_id, action, old_status, new_status, reason, changes, actor, changed_at
"""
SELECT_AUDIT = """
SELECT id, broker_id, action, old_status, new_status, reason, changes, actor, changed_at
FROM broker_audit
WHERE %(broker_id)s::text IS NULL OR broker_id = %(broker_id)s
ORDER BY id DESC
LIMIT %(limit)s
"""
SELECT_STATUSES = """
SELECT b.broker_id, b.routing_status AS status, b.status_reason AS reason,
    b.status_changed_at AS changed_at,
    (SELECT a.actor FROM broker_audit a WHERE a.broker_id = b.broker_id AND a.action = 'STATUS'
     ORDER BY a.id DESC LIMIT 1) AS changed_by
FROM brokers b WHERE b.enabled ORDER BY b.broker_id
"""
SELECT_PROFILES = (
    _PROFILE_SELECT
    + "WHERE %(symbol)s::text IS NULL OR p.symbol = %(symbol)s\n"
    + "ORDER BY p.symbol, p.broker_id LIMIT %(limit)s"
)


def _view(row: dict[str, Any]) -> BrokerAdminView:
    return BrokerAdminView(
        broker=broker_from_row(row),
        status=RoutingStatus(row["routing_status"]),
        reason=row["status_reason"],
        status_changed_at=row["status_changed_at"],
    )


def _broker_params(broker: BrokerConfig) -> dict[str, Any]:
    params = broker.model_dump(mode="json")
    params["fee_schedule"] = Jsonb(params["fee_schedule"])
    params["adapter_config"] = Jsonb(params["adapter_config"])
    params["supported_order_types"] = sorted(params["supported_order_types"])
    return params


def _audit(
    conn: psycopg.Connection[dict[str, Any]],
    broker_id: str,
    action: AuditAction,
    actor: str,
    **fields: Any,
) -> AuditEntry:
    params = {
        "broker_id": broker_id,
        "action": action.value,
        "old_status": fields.get("old_status"),
        "new_status": fields.get("new_status"),
        "reason": fields.get("reason"),
        "changes": Jsonb(fields.get("changes") or {}),
        "actor": actor,
    }
    row = conn.execute(INSERT_AUDIT, params).fetchone()
    assert row is not None
    return AuditEntry.model_validate(row)


class PostgresBrokerAdministration:
    """:class:`shared.ports.BrokerAdministration`: each change and its audit row commit together."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_brokers(self) -> list[BrokerAdminView]:
        """Every broker, enabled or not, by id."""
        with self._db.connection() as conn:
            return [_view(r) for r in conn.execute(SELECT_ALL).fetchall()]

    def register(self, broker: BrokerConfig, *, actor: str) -> AuditEntry:
        """Insert a new broker and its ``REGISTER`` audit row.

        Raises
        ------
        ConflictError
            A broker with this id exists (409); nothing is written.
        """
        with self._db.connection() as conn:
            if conn.execute(INSERT_NEW, _broker_params(broker)).fetchone() is None:
                raise ConflictError(f"broker {broker.broker_id} already exists")
            changes = broker.model_dump(mode="json", exclude={"broker_id"})
            return _audit(conn, broker.broker_id, AuditAction.REGISTER, actor, changes=changes)

    def update(self, broker_id: str, update: BrokerUpdate, *, actor: str) -> BrokerAdminView:
        """Apply ``update`` to a locked broker row and audit what it set.

        Raises
        ------
        NotFoundError
            No such broker (404).
        """
        with self._db.connection() as conn:
            row = conn.execute(SELECT_FOR_UPDATE, (broker_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"broker {broker_id} not found")
            changed = update.apply(broker_from_row(row))
            conn.execute(UPSERT, _broker_params(changed))
            _audit(conn, broker_id, AuditAction.UPDATE, actor, changes=update.changes())
            stored = conn.execute(SELECT_FOR_UPDATE, (broker_id,)).fetchone()
        assert stored is not None
        return _view(stored)

    def set_status(
        self, broker_id: str, change: StatusChange, *, actor: str
    ) -> tuple[BrokerAdminView, AuditEntry]:
        """Set the routing status under the row's lock, with a ``STATUS`` audit row.

        Raises
        ------
        NotFoundError
            No such broker (404).
        """
        with self._db.connection() as conn:
            row = conn.execute(SELECT_FOR_UPDATE, (broker_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"broker {broker_id} not found")
            params = {"status": change.status.value, "reason": change.reason}
            changed = conn.execute(SET_STATUS, {**params, "broker_id": broker_id}).fetchone()
            entry = _audit(
                conn,
                broker_id,
                AuditAction.STATUS,
                actor,
                old_status=row["routing_status"],
                new_status=change.status.value,
                reason=change.reason,
            )
        view = _view(
            {
                **row,
                "routing_status": change.status.value,
                "status_reason": change.reason,
                "status_changed_at": changed["status_changed_at"] if changed else None,
            }
        )
        return view, entry

    def audit(self, *, limit: int, broker_id: str | None = None) -> list[AuditEntry]:
        """The newest administrative changes first."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_AUDIT, {"limit": limit, "broker_id": broker_id}).fetchall()
        return [AuditEntry.model_validate(r) for r in rows]

    def statuses(self) -> list[BrokerStatusMessage]:
        """Every enabled broker's routing status and who set it last."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_STATUSES).fetchall()
        return [BrokerStatusMessage.model_validate(r) for r in rows]

    def profiles(self, *, symbol: str | None, limit: int) -> list[BrokerProfile]:
        """Learned profiles with the routing status they are routed with."""
        with self._db.connection() as conn:
            rows = conn.execute(SELECT_PROFILES, {"symbol": symbol, "limit": limit}).fetchall()
        return [profile_from_row(r) for r in rows]
