"""The simulated market behind the Kite simulator's ``/quote`` and ``/instruments``.

Each listed instrument has a reference price; its quote comes from the simulator's own book:
the last price is the latest fill in the symbol (else the reference), the depth is the resting
limit orders of the book merged with a market maker quoting one tick either side of the last
price, the volume counts the book's fills on top of a base, and the circuit limits are the
reference +/- ``band_pct``. ``stale_by_s`` back-dates every quote's timestamp (a stuck feed),
and ``bad_rows`` are appended to the instruments dump verbatim (a broken dump; to an exchange's
dump when they end with its name).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from local.simulators._core import OrderBook, SimOrder, ist_text

DUMP_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)
"""https://kite.trade/docs/connect/v3/market-quotes/#csv-response-columns"""
LEVELS = 5


@dataclass(frozen=True)
class Listing:
    """One simulated instrument."""

    exchange: str
    symbol: str
    reference: Decimal
    token: int
    tick: Decimal = Decimal("0.05")
    lot: int = 1
    level_quantity: int = 500
    """Shares the market maker shows at its best level (more at each level further out)."""
    base_volume: int = 1_000_000
    band_pct: Decimal = Decimal(10)


def default_listings() -> list[Listing]:
    """The local seed's symbols on NSE and BSE, at the seed's prices and volumes."""
    from local.seed import SYMBOLS

    listings = []
    for number, (symbol, (price, depth, volume)) in enumerate(sorted(SYMBOLS.items())):
        for offset, exchange in ((0, "NSE"), (500_000, "BSE")):
            listings.append(
                Listing(
                    exchange=exchange,
                    symbol=symbol,
                    reference=Decimal(price),
                    token=100_000 + offset + number,
                    level_quantity=max(1, depth // 30),
                    base_volume=volume,
                )
            )
    return listings


def _to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).quantize(Decimal(1), rounding=rounding) * tick


@dataclass
class SimMarket:
    """The simulated market of one Kite simulator."""

    book: OrderBook
    clock: Callable[[], datetime]
    listings: dict[tuple[str, str], Listing] = field(default_factory=dict)
    stale_by_s: float = 0.0
    bad_rows: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, listings: Iterable[Listing]) -> None:
        """Add or replace instruments."""
        with self._lock:
            for listing in listings:
                self.listings[(listing.exchange, listing.symbol)] = listing

    def quote(self, exchange: str, symbol: str) -> dict[str, Any] | None:
        """Kite's full quote of one instrument, or ``None`` when it is not listed."""
        listing = self.listings.get((exchange, symbol))
        if listing is None:
            return None
        orders = [o for o in list(self.book.orders.values()) if o.symbol == symbol]
        last = self._last_price(listing, orders)
        bids, asks = self._depth(listing, last, orders)
        filled = sum(o.filled for o in orders)
        stamp = ist_text(self.clock() - timedelta(seconds=self.stale_by_s))
        width = listing.reference * listing.band_pct / 100
        return {
            "instrument_token": listing.token,
            "timestamp": stamp,
            "last_trade_time": stamp,
            "last_price": last,
            "last_quantity": 1,
            "buy_quantity": sum(level["quantity"] for level in bids),
            "sell_quantity": sum(level["quantity"] for level in asks),
            "volume": listing.base_volume + filled,
            "average_price": last,
            "oi": 0,
            "oi_day_high": 0,
            "oi_day_low": 0,
            "net_change": 0,
            "lower_circuit_limit": _to_tick(listing.reference - width, listing.tick, ROUND_CEILING),
            "upper_circuit_limit": _to_tick(listing.reference + width, listing.tick, ROUND_FLOOR),
            "ohlc": {
                "open": listing.reference,
                "high": max(last, listing.reference),
                "low": min(last, listing.reference),
                "close": listing.reference,
            },
            "depth": {"buy": bids, "sell": asks},
        }

    @staticmethod
    def _last_price(listing: Listing, orders: list[SimOrder]) -> Decimal:
        fills = [o for o in orders if o.filled > 0 and o.average_price > 0]
        if not fills:
            return listing.reference
        latest = max(fills, key=lambda o: o.updated_at or o.placed_at)
        return _to_tick(latest.average_price, listing.tick, ROUND_FLOOR)

    @staticmethod
    def _depth(
        listing: Listing, last: Decimal, orders: list[SimOrder]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        resting: dict[str, dict[Decimal, list[int]]] = {
            "BUY": defaultdict(lambda: [0, 0]),
            "SELL": defaultdict(lambda: [0, 0]),
        }
        for order in orders:
            if order.status == "OPEN" and order.order_type == "LIMIT" and order.price > 0:
                level = resting[order.side][order.price]
                level[0] += order.quantity - order.filled
                level[1] += 1
        for i in range(1, LEVELS + 1):
            maker = listing.level_quantity * i
            resting["BUY"][last - listing.tick * i][0] += maker
            resting["BUY"][last - listing.tick * i][1] += 1
            resting["SELL"][last + listing.tick * i][0] += maker
            resting["SELL"][last + listing.tick * i][1] += 1

        def side(name: str, best_first: bool) -> list[dict[str, Any]]:
            prices = sorted(resting[name], reverse=best_first)[:LEVELS]
            return [
                {"price": p, "quantity": resting[name][p][0], "orders": resting[name][p][1]}
                for p in prices
            ]

        return side("BUY", True), side("SELL", False)

    def dump(self, exchange: str | None) -> str:
        """The instruments CSV (every exchange, or one), with ``bad_rows`` at the end."""
        lines = [",".join(DUMP_COLUMNS)]
        for listing in self.listings.values():
            if exchange is not None and listing.exchange != exchange:
                continue
            lines.append(
                f"{listing.token},{listing.token // 256},{listing.symbol},{listing.symbol} LTD,"
                f"{listing.reference},,0.0,{listing.tick},{listing.lot},EQ,{listing.exchange},"
                f"{listing.exchange}"
            )
        lines.extend(r for r in self.bad_rows if exchange is None or r.endswith(f",{exchange}"))
        return "\n".join(lines) + "\n"
