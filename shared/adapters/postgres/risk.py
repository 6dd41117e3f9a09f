"""Pre-trade risk data in Postgres: instruments, kill switches (audited), a trader's risk state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.adapters.postgres.pool import Database
from shared.domain.models import Exchange
from shared.domain.orders import ChildOrderStatus
from shared.domain.risk import GLOBAL_SCOPE, Instrument, KillSwitch
from shared.ports import TraderLimitOverrides, TraderRiskState

_INSTRUMENT_COLUMNS = """symbol, exchange, tick_size, lot_size, freeze_quantity, price_band_lower,
    price_band_upper, band_date, updated_at"""
SELECT_INSTRUMENT = (
    f"SELECT {_INSTRUMENT_COLUMNS} FROM instruments WHERE symbol = %s AND exchange = %s"
)
UPSERT_INSTRUMENT = """
INSERT INTO instruments (symbol, exchange, tick_size, lot_size, freeze_quantity,
    price_band_lower, price_band_upper, band_date, updated_at)
VALUES (%(symbol)s, %(exchange)s, %(tick_size)s, %(lot_size)s, %(freeze_quantity)s,
    %(band_lower)s, %(band_upper)s, %(band_date)s, %(updated_at)s)
ON CONFLICT (symbol, exchange) DO UPDATE SET
    tick_size = EXCLUDED.tick_size, lot_size = EXCLUDED.lot_size,
    freeze_quantity = EXCLUDED.freeze_quantity, price_band_lower = EXCLUDED.price_band_lower,
    price_band_upper = EXCLUDED.price_band_upper, band_date = EXCLUDED.band_date,
    updated_at = EXCLUDED.updated_at
"""

# A record stored with the same rules and band is left alone, so a repeated load changes (and
# counts) nothing; updated_at moves only when something did.
UPSERT_INSTRUMENT_IF_CHANGED = (
    UPSERT_INSTRUMENT
    + """
WHERE (instruments.tick_size, instruments.lot_size, instruments.freeze_quantity,
    instruments.price_band_lower, instruments.price_band_upper, instruments.band_date)
    IS DISTINCT FROM (EXCLUDED.tick_size, EXCLUDED.lot_size, EXCLUDED.freeze_quantity,
    EXCLUDED.price_band_lower, EXCLUDED.price_band_upper, EXCLUDED.band_date)
"""
)

_WORKING = [
    s.value
    for s in (ChildOrderStatus.PENDING, ChildOrderStatus.PLACED, ChildOrderStatus.PARTIALLY_FILLED)
]
# One statement, one round trip: the latest row of each switch that concerns the trader, the
# count of the trader's working orders (the partial index of V007) and the trader's limits.
SELECT_STATE = """
SELECT
    (SELECT count(DISTINCT order_id) FROM child_orders
        WHERE user_id = %(user_id)s AND status = ANY(%(working)s)) AS open_orders,
    (SELECT coalesce(jsonb_agg(to_jsonb(k)), '[]'::jsonb) FROM (
        SELECT DISTINCT ON (scope) scope, engaged, reason, actor, changed_at
        FROM kill_switches WHERE scope IN (%(global)s, %(user_id)s)
        ORDER BY scope, id DESC) k) AS switches,
    l.user_id IS NOT NULL AS has_limits,
    l.max_order_quantity, l.max_order_value_inr, l.max_open_orders
FROM (SELECT 1) AS one LEFT JOIN trader_risk_limits l ON l.user_id = %(user_id)s
"""
INSERT_SWITCH = """
INSERT INTO kill_switches (scope, engaged, reason, actor)
VALUES (%s, %s, %s, %s)
RETURNING scope, engaged, reason, actor, changed_at
"""
SELECT_HISTORY = """
SELECT scope, engaged, reason, actor, changed_at FROM kill_switches WHERE scope = %s ORDER BY id
"""


def instrument_from_row(row: dict[str, Any]) -> Instrument:
    """Map an ``instruments`` row to the domain record."""
    return Instrument(
        symbol=row["symbol"],
        exchange=Exchange(row["exchange"]),
        tick_size=row["tick_size"],
        lot_size=row["lot_size"],
        freeze_quantity=row["freeze_quantity"],
        band_lower=row["price_band_lower"],
        band_upper=row["price_band_upper"],
        band_date=row["band_date"],
        updated_at=row["updated_at"],
    )


def _switch(row: dict[str, Any]) -> KillSwitch:
    return KillSwitch(
        scope=row["scope"],
        engaged=row["engaged"],
        reason=row["reason"],
        actor=row["actor"],
        changed_at=row["changed_at"],
    )


class PostgresInstrumentRepository:
    """:class:`shared.ports.InstrumentRepository` over ``instruments``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, symbol: str, exchange: Exchange) -> Instrument | None:
        """The record of ``symbol`` on ``exchange``, or ``None``."""
        with self._db.connection() as conn:
            row = conn.execute(SELECT_INSTRUMENT, (symbol, exchange.value)).fetchone()
        return instrument_from_row(row) if row else None

    def upsert(self, instrument: Instrument) -> None:
        """Create or replace the record of ``(symbol, exchange)``."""
        with self._db.connection() as conn:
            conn.execute(UPSERT_INSTRUMENT, _instrument_params(instrument))

    def upsert_many(self, instruments: Sequence[Instrument]) -> int:
        """Create or change records in one transaction; return how many rows changed."""
        if not instruments:
            return 0
        with self._db.connection() as conn, conn.cursor() as cur:
            changed = 0
            for instrument in instruments:
                cur.execute(UPSERT_INSTRUMENT_IF_CHANGED, _instrument_params(instrument))
                changed += max(cur.rowcount, 0)
        return changed


def _instrument_params(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "exchange": instrument.exchange.value,
        "tick_size": instrument.tick_size,
        "lot_size": instrument.lot_size,
        "freeze_quantity": instrument.freeze_quantity,
        "band_lower": instrument.band_lower,
        "band_upper": instrument.band_upper,
        "band_date": instrument.band_date,
        "updated_at": instrument.updated_at,
    }


class PostgresRiskState:
    """:class:`shared.ports.RiskStateReader`, and the writes behind it (kill switches, limits).

    Writes have no port yet: only the local CLI and tests make them (an admin API would).
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def read(self, user_id: str) -> TraderRiskState:
        """Switches, open orders and limit overrides of ``user_id`` in one statement."""
        params = {"user_id": user_id, "global": GLOBAL_SCOPE, "working": _WORKING}
        with self._db.reading() as conn:
            row = conn.execute(SELECT_STATE, params).fetchone()
        assert row is not None  # one row: FROM a one-row subquery
        return TraderRiskState(
            switches=tuple(
                KillSwitch(
                    scope=s["scope"],
                    engaged=s["engaged"],
                    reason=s["reason"],
                    actor=s["actor"],
                    changed_at=datetime.fromisoformat(s["changed_at"]),
                )
                for s in row["switches"]
            ),
            open_orders=int(row["open_orders"]),
            limits=TraderLimitOverrides(
                max_order_quantity=row["max_order_quantity"],
                max_order_value_inr=row["max_order_value_inr"],
                max_open_orders=row["max_open_orders"],
            )
            if row["has_limits"]
            else None,
        )

    def set(self, scope: str, *, engaged: bool, reason: str, actor: str) -> KillSwitch:
        """Append a change of ``scope`` to the history; the latest row is the current state."""
        with self._db.connection() as conn:
            row = conn.execute(INSERT_SWITCH, (scope, engaged, reason, actor)).fetchone()
        assert row is not None
        return _switch(row)

    def history(self, scope: str) -> list[KillSwitch]:
        """Every change of ``scope``, oldest first."""
        with self._db.connection() as conn:
            return [_switch(r) for r in conn.execute(SELECT_HISTORY, (scope,)).fetchall()]

    def upsert_limits(self, user_id: str, limits: TraderLimitOverrides) -> None:
        """Set a trader's own limits (administration and tests)."""
        with self._db.connection() as conn:
            conn.execute(
                """
                INSERT INTO trader_risk_limits
                    (user_id, max_order_quantity, max_order_value_inr, max_open_orders)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (user_id) DO UPDATE SET
                    max_order_quantity = EXCLUDED.max_order_quantity,
                    max_order_value_inr = EXCLUDED.max_order_value_inr,
                    max_open_orders = EXCLUDED.max_open_orders, updated_at = now()
                """,
                (
                    user_id,
                    limits.max_order_quantity,
                    limits.max_order_value_inr,
                    limits.max_open_orders,
                ),
            )
