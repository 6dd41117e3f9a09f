"""Broker configuration in Postgres."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from shared.adapters.postgres.pool import Database
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.models import FeeSchedule, OrderType

_COLUMNS = """broker_id, display_name, adapter, adapter_config, webhook_auth, webhook_secret_ref,
    fee_schedule, supported_order_types, lot_size, freeze_quantity, rate_limit_per_s, enabled"""

SELECT_ENABLED = f"SELECT {_COLUMNS} FROM brokers WHERE enabled ORDER BY broker_id"
SELECT_ONE = f"SELECT {_COLUMNS} FROM brokers WHERE broker_id = %s"
UPSERT = """
INSERT INTO brokers (broker_id, display_name, adapter, adapter_config, webhook_auth,
    webhook_secret_ref, fee_schedule, supported_order_types, lot_size, freeze_quantity,
    rate_limit_per_s, enabled)
VALUES (%(broker_id)s, %(display_name)s, %(adapter)s, %(adapter_config)s, %(webhook_auth)s,
    %(webhook_secret_ref)s,
    %(fee_schedule)s, %(supported_order_types)s, %(lot_size)s, %(freeze_quantity)s,
    %(rate_limit_per_s)s, %(enabled)s)
ON CONFLICT (broker_id) DO UPDATE SET
    display_name = EXCLUDED.display_name, adapter = EXCLUDED.adapter,
    adapter_config = EXCLUDED.adapter_config,
    webhook_auth = EXCLUDED.webhook_auth, webhook_secret_ref = EXCLUDED.webhook_secret_ref,
    fee_schedule = EXCLUDED.fee_schedule, supported_order_types = EXCLUDED.supported_order_types,
    lot_size = EXCLUDED.lot_size, freeze_quantity = EXCLUDED.freeze_quantity,
    rate_limit_per_s = EXCLUDED.rate_limit_per_s, enabled = EXCLUDED.enabled, updated_at = now()
"""


def broker_from_row(row: dict[str, Any]) -> BrokerConfig:
    """Map a ``brokers`` row to the domain model."""
    return BrokerConfig(
        broker_id=row["broker_id"],
        display_name=row["display_name"],
        adapter=row["adapter"],
        adapter_config=row["adapter_config"] or {},
        webhook_auth=WebhookAuth(row["webhook_auth"]),
        webhook_secret_ref=row["webhook_secret_ref"],
        fee_schedule=FeeSchedule.model_validate(row["fee_schedule"] or {}),
        supported_order_types=frozenset(OrderType(t) for t in row["supported_order_types"]),
        lot_size=row["lot_size"],
        freeze_quantity=row["freeze_quantity"],
        rate_limit_per_s=row["rate_limit_per_s"],
        enabled=row["enabled"],
    )


class PostgresBrokerRepository:
    """:class:`shared.ports.BrokerRepository` over the ``brokers`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_enabled(self) -> list[BrokerConfig]:
        """Every enabled broker, by id."""
        with self._db.connection() as conn:
            return [broker_from_row(r) for r in conn.execute(SELECT_ENABLED).fetchall()]

    def get(self, broker_id: str) -> BrokerConfig | None:
        """One broker or ``None``."""
        with self._db.connection() as conn:
            row = conn.execute(SELECT_ONE, (broker_id,)).fetchone()
        return broker_from_row(row) if row else None

    def upsert(self, broker: BrokerConfig) -> None:
        """Create or replace a broker (seeding, administration)."""
        params = broker.model_dump(mode="json")
        params["fee_schedule"] = Jsonb(params["fee_schedule"])
        params["adapter_config"] = Jsonb(params["adapter_config"])
        params["supported_order_types"] = sorted(params["supported_order_types"])
        with self._db.connection() as conn:
            conn.execute(UPSERT, params)
