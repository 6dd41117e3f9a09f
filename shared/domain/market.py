"""Market data: quotes, their freshness, and instrument-master rows (pure; see docs/market-data.md).

A :class:`MarketQuote` is what a broker's market-quote API says of one instrument at one moment:
last price, the five best levels of each side, the day's volume and circuit limits. Whether it
may be used is decided here, from the time the exchange stamped it and the time it is judged at
(passed in: the domain has no clock). Rows of the broker's instruments dump are read into
:class:`InstrumentListing` records, or refused with a reason (a bad row is counted and skipped,
never fatal to the load).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Literal

from shared.domain.models import SYMBOL_PATTERN, Exchange, FrozenModel, Quote
from shared.domain.risk import IST, Instrument

_SYMBOL = re.compile(SYMBOL_PATTERN)
BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One price level of the order book."""

    price: Decimal
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class MarketQuote:
    """One instrument's market quote as the market-data source gave it."""

    exchange: Exchange
    symbol: str
    last_price: Decimal | None
    bids: tuple[DepthLevel, ...]
    """Best first; empty levels (price 0) left out."""
    asks: tuple[DepthLevel, ...]
    volume: int
    """Shares traded today."""
    lower_circuit: Decimal | None
    upper_circuit: Decimal | None
    exchange_time: datetime
    """When the exchange last updated the quote (tz-aware)."""

    @property
    def bid(self) -> Decimal | None:
        """The best bid, or ``None`` when the buy side is empty."""
        return self.bids[0].price if self.bids else None

    @property
    def ask(self) -> Decimal | None:
        """The best ask, or ``None`` when the sell side is empty."""
        return self.asks[0].price if self.asks else None

    @property
    def depth(self) -> int:
        """Shares shown on both sides of the book (every level given)."""
        return sum(level.quantity for level in (*self.bids, *self.asks))

    @property
    def spread_bps(self) -> float | None:
        """The touch spread in basis points of the mid; ``None`` without both sides."""
        bid, ask = self.bid, self.ask
        if bid is None or ask is None or bid >= ask:
            return None
        return float((ask - bid) / ((ask + bid) / 2) * BPS)

    def as_quote(self) -> Quote | None:
        """The routing engine's :class:`Quote`, or ``None`` when there is no price at all.

        A crossed touch (bid above ask, as in an auction) keeps only the last price.
        """
        bid, ask = self.bid, self.ask
        if bid is not None and ask is not None and bid > ask:
            bid = ask = None
        if bid is None and ask is None and self.last_price is None:
            return None
        return Quote(bid=bid, ask=ask, last=self.last_price)

    def age_s(self, now: datetime) -> float:
        """Seconds between the exchange's stamp and ``now`` (negative if stamped ahead)."""
        return (now - self.exchange_time).total_seconds()


def staleness(quote: MarketQuote, now: datetime, max_age_s: float) -> str | None:
    """Why ``quote`` may not be used at ``now``, or ``None`` when it is fresh.

    A quote older than ``max_age_s`` (the exchange has not updated it: a halted or closed
    market, a stuck feed) or with no price is refused.
    """
    age = quote.age_s(now)
    if age > max_age_s:
        return (
            f"the quote of {quote.exchange.value}:{quote.symbol} is {age:.1f} s old "
            f"(stamped {quote.exchange_time.isoformat()}; at most {max_age_s:g} s is used)"
        )
    if quote.as_quote() is None:
        return f"the quote of {quote.exchange.value}:{quote.symbol} carries no price"
    return None


@dataclass(frozen=True, slots=True)
class MarketStatistics:
    """What the routing engine's profiles read of the market for one symbol."""

    symbol: str
    last_price: float | None
    spread_bps: float | None
    order_book_depth: int
    volume: int
    observed_at: datetime


SESSION_OPEN = time(9, 15)
WINDOW_S = 300
WINDOWS_PER_SESSION = 75


def statistics_of(quote: MarketQuote) -> MarketStatistics:
    """The profile fields a fresh quote refreshes.

    ``volume`` is the profile's ``recent_volume``: shares per 5-minute window, estimated as the
    day's volume over the windows elapsed since the 09:15 IST open (at least one, at most the
    session's 75), since the quote API gives the day's total, not a window's.
    """
    local = quote.exchange_time.astimezone(IST)
    opened = datetime.combine(local.date(), SESSION_OPEN, tzinfo=IST)
    windows = min(max(1, int((local - opened).total_seconds() // WINDOW_S)), WINDOWS_PER_SESSION)
    return MarketStatistics(
        symbol=quote.symbol,
        last_price=float(quote.last_price) if quote.last_price else None,
        spread_bps=quote.spread_bps,
        order_book_depth=quote.depth,
        volume=quote.volume // windows,
        observed_at=quote.exchange_time,
    )


# -- the instrument master -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstrumentListing:
    """A cash-market equity of the instruments dump: its trading rules, not yet its band."""

    exchange: Exchange
    symbol: str
    tick_size: Decimal
    lot_size: int


class BadRowError(ValueError):
    """An instruments-dump row that cannot be read (counted and skipped by the loader)."""


EQUITY_TYPES = frozenset({"EQ"})
"""``instrument_type`` values routed by this service (cash equities)."""


def listing_of(row: Mapping[str, str | None]) -> InstrumentListing | None:
    """Read one row of the instruments dump (columns as the broker's CSV names them).

    Returns
    -------
    InstrumentListing | None
        The listing, or ``None`` when the row is outside the router's universe (another
        exchange or segment, a derivative): skipped, not bad.

    Raises
    ------
    BadRowError
        When the row has more or fewer fields than the header, or an in-universe row has a
        missing or unreadable field.
    """
    if None in row or any(value is None for value in row.values()):
        raise BadRowError(f"row {dict(row)!r} does not have the dump's columns")
    exchange = (row.get("exchange") or "").strip()
    segment = (row.get("segment") or "").strip()
    kind = (row.get("instrument_type") or "").strip()
    if exchange not in Exchange.__members__ or segment != exchange or kind not in EQUITY_TYPES:
        return None
    symbol = (row.get("tradingsymbol") or "").strip()
    if not _SYMBOL.match(symbol):
        raise BadRowError(f"tradingsymbol {symbol!r} is not an NSE/BSE symbol")
    tick = _decimal(row, "tick_size")
    if tick <= 0:
        raise BadRowError(f"{symbol}: tick_size {tick} must be positive")
    raw_lot = (row.get("lot_size") or "").strip()
    if not raw_lot.isdigit() or int(raw_lot) <= 0:
        raise BadRowError(f"{symbol}: lot_size {raw_lot!r} must be a positive integer")
    return InstrumentListing(Exchange(exchange), symbol, tick, int(raw_lot))


def _decimal(row: Mapping[str, str | None], name: str) -> Decimal:
    raw = (row.get(name) or "").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BadRowError(f"{row.get('tradingsymbol')}: {name} {raw!r} is not a number") from None
    if not value.is_finite():
        raise BadRowError(f"{row.get('tradingsymbol')}: {name} {raw!r} is not a number")
    return value


def instrument_with_band(
    listing: InstrumentListing, quote: MarketQuote | None, *, day: date, now: datetime
) -> Instrument | str:
    """The instrument-master record of ``listing`` with the day's band from ``quote``.

    Returns the reason instead when the quote has no usable circuit limits (the record is then
    not written: risk refuses the symbol rather than trade it against yesterday's band).
    """
    if quote is None:
        return f"{listing.symbol}: no quote (no circuit limits for {day.isoformat()})"
    lower, upper = quote.lower_circuit, quote.upper_circuit
    if lower is None or upper is None or lower <= 0 or upper < lower:
        return f"{listing.symbol}: unusable circuit limits {lower}-{upper}"
    return Instrument(
        symbol=listing.symbol,
        exchange=listing.exchange,
        tick_size=listing.tick_size,
        lot_size=listing.lot_size,
        freeze_quantity=None,
        band_lower=lower,
        band_upper=upper,
        band_date=day,
        updated_at=now,
    )


@dataclass
class LoadReport:
    """Counts of one run of the daily instrument load (and why rows were left out)."""

    rows: int = 0
    """Rows read from the dump."""
    listed: int = 0
    """Rows in the router's universe (NSE/BSE cash equities)."""
    written: int = 0
    """Records created or changed."""
    unchanged: int = 0
    """Records already stored exactly so (a repeated load writes nothing)."""
    bad_rows: int = 0
    no_band: int = 0
    reasons: list[str] = field(default_factory=list)
    """The first reasons rows were refused (at most :data:`MAX_REASONS`)."""

    def refuse(self, reason: str, *, bad: bool) -> None:
        """Count a row left out and keep its reason while there is room."""
        if bad:
            self.bad_rows += 1
        else:
            self.no_band += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {
            "rows": self.rows,
            "listed": self.listed,
            "written": self.written,
            "unchanged": self.unchanged,
            "badRows": self.bad_rows,
            "noBand": self.no_band,
            "reasons": list(self.reasons),
        }


MAX_REASONS = 50


@dataclass
class StatisticsReport:
    """Counts of one refresh of the routed symbols' market statistics."""

    symbols: int = 0
    refreshed: int = 0
    profiles: int = 0
    """Profile rows updated."""
    stale: int = 0
    unavailable: int = 0
    reasons: list[str] = field(default_factory=list)

    def exclude(self, reason: str, *, stale: bool) -> None:
        """Count a symbol left as it was, with the reason."""
        if stale:
            self.stale += 1
        else:
            self.unavailable += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {
            "symbols": self.symbols,
            "refreshed": self.refreshed,
            "profiles": self.profiles,
            "stale": self.stale,
            "unavailable": self.unavailable,
            "reasons": list(self.reasons),
        }


def batches(items: Sequence[tuple[Exchange, str]], size: int) -> list[list[tuple[Exchange, str]]]:
    """``items`` in consecutive batches of at most ``size`` (the quote API's per-call cap)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# -- the admin trigger (POST /api/v1/admin/market/refresh) ----------------------------------------

MarketJob = Literal["instruments", "statistics"]


class MarketRefreshRequest(FrozenModel):
    """Which market-data job to run now."""

    job: MarketJob


class MarketRefreshResult(FrozenModel):
    """A job's counts (``LoadReport`` or ``StatisticsReport``; the other's fields are ``None``)."""

    job: MarketJob
    rows: int | None = None
    listed: int | None = None
    written: int | None = None
    unchanged: int | None = None
    bad_rows: int | None = None
    no_band: int | None = None
    symbols: int | None = None
    refreshed: int | None = None
    profiles: int | None = None
    stale: int | None = None
    unavailable: int | None = None
    reasons: tuple[str, ...] = ()

    @classmethod
    def of(cls, job: MarketJob, report: LoadReport | StatisticsReport) -> MarketRefreshResult:
        """The result of ``report``."""
        return cls.model_validate({"job": job, **report.as_dict()})
