"""The market statistics of the broker profiles in Postgres (the scheduled refresh writes them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from shared.adapters.postgres.pool import Database
from shared.domain.market import MarketStatistics

SELECT_ROUTED_SYMBOLS = "SELECT DISTINCT symbol FROM broker_execution_profiles ORDER BY symbol"
# Market figures are the symbol's, whichever broker the profile is of; what was learned from
# executions (latency, fills, slippage) and last_updated (the age of that learning) stay as
# they are. A figure the quote lacks (a one-sided book has no spread) keeps its stored value.
UPDATE_STATISTICS = """
UPDATE broker_execution_profiles SET
    current_spread_bps = coalesce(%(spread_bps)s, current_spread_bps),
    order_book_depth = %(depth)s,
    recent_volume = %(volume)s,
    last_price = coalesce(%(last_price)s, last_price),
    market_updated_at = %(observed_at)s,
    updated_at = now()
WHERE symbol = %(symbol)s
"""


class PostgresMarketStatistics:
    """:class:`shared.ports.MarketStatisticsStore` over ``broker_execution_profiles``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def routed_symbols(self) -> list[str]:
        """Every symbol with at least one broker profile."""
        with self._db.connection() as conn:
            return [row["symbol"] for row in conn.execute(SELECT_ROUTED_SYMBOLS).fetchall()]

    def apply(self, statistics: Sequence[MarketStatistics]) -> int:
        """Update every profile of each symbol in one transaction; return the rows changed."""
        changed = 0
        with self._db.connection() as conn, conn.cursor() as cur:
            for stats in statistics:
                cur.execute(
                    UPDATE_STATISTICS,
                    {
                        "symbol": stats.symbol,
                        "spread_bps": stats.spread_bps,
                        "depth": stats.order_book_depth,
                        "volume": stats.volume,
                        "last_price": stats.last_price,
                        # The column is UTC without a zone, like last_updated.
                        "observed_at": stats.observed_at.astimezone(UTC).replace(tzinfo=None),
                    },
                )
                changed += max(cur.rowcount, 0)
        return changed
