"""Market quotes, their freshness, and instruments-dump rows (shared/domain/market.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.market import (
    BadRowError,
    DepthLevel,
    InstrumentListing,
    MarketQuote,
    instrument_with_band,
    listing_of,
    staleness,
    statistics_of,
)
from shared.domain.models import Exchange
from shared.domain.risk import IST

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 10:30 IST
HEADER = [
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
]


def quote(**changes: object) -> MarketQuote:
    fields: dict[str, object] = {
        "exchange": Exchange.NSE,
        "symbol": "INFY",
        "last_price": Decimal("1500.00"),
        "bids": (DepthLevel(Decimal("1499.90"), 100, 2), DepthLevel(Decimal("1499.85"), 50, 1)),
        "asks": (DepthLevel(Decimal("1500.10"), 80, 1),),
        "volume": 750_000,
        "lower_circuit": Decimal("1350.00"),
        "upper_circuit": Decimal("1650.00"),
        "exchange_time": NOW - timedelta(seconds=2),
    }
    return MarketQuote(**(fields | changes))  # type: ignore[arg-type]


def row(line: str) -> dict[str, str | None]:
    values = line.split(",")
    return dict(zip(HEADER, values + [None] * (len(HEADER) - len(values)), strict=True))


def test_a_quote_gives_touch_spread_and_depth() -> None:
    # GIVEN a two-sided quote WHEN read THEN touch, spread in bps of the mid and depth
    q = quote()
    assert (q.bid, q.ask) == (Decimal("1499.90"), Decimal("1500.10"))
    assert q.spread_bps == pytest.approx(0.2 / 1500 * 10_000)
    assert q.depth == 230
    assert q.as_quote() is not None


def test_a_one_sided_or_crossed_book_keeps_only_what_is_sound() -> None:
    # GIVEN a book without bids, and a crossed one (an auction)
    one_sided = quote(bids=())
    crossed = quote(bids=(DepthLevel(Decimal("1501"), 1, 1),))
    # WHEN read THEN no spread; the crossed touch is dropped for the last price
    assert one_sided.spread_bps is None
    routed = crossed.as_quote()
    assert routed is not None
    assert (routed.bid, routed.ask, routed.last) == (None, None, Decimal("1500.00"))
    assert quote(bids=(), asks=(), last_price=None).as_quote() is None


def test_staleness_names_the_age_and_the_limit() -> None:
    # GIVEN a quote two seconds old and one two minutes old WHEN judged with a 30 s limit
    fresh = staleness(quote(), NOW, 30)
    stale = staleness(quote(exchange_time=NOW - timedelta(minutes=2)), NOW, 30)
    priceless = staleness(quote(bids=(), asks=(), last_price=None), NOW, 30)
    # THEN only the old and the priceless ones are refused, saying why
    assert fresh is None
    assert stale is not None
    assert "120.0 s old" in stale
    assert "at most 30 s" in stale
    assert priceless is not None
    assert "no price" in priceless


def test_statistics_estimate_a_five_minute_window_from_the_days_volume() -> None:
    # GIVEN a 10:30 IST quote: 75 minutes (15 windows) into the session
    stats = statistics_of(quote(exchange_time=datetime(2026, 12, 1, 10, 30, tzinfo=IST)))
    # THEN recent volume is the day's over the windows elapsed; depth and spread from the book
    assert stats.volume == 750_000 // 15
    assert stats.order_book_depth == 230
    assert stats.last_price == 1500.0
    # AND before the open the whole day's volume counts as one window
    early = statistics_of(quote(exchange_time=datetime(2026, 12, 1, 9, 0, tzinfo=IST)))
    assert early.volume == 750_000


def test_an_equity_row_becomes_a_listing() -> None:
    listing = listing_of(row("408065,1594,INFY,INFOSYS,0,,,0.05,1,EQ,NSE,NSE"))
    assert listing == InstrumentListing(Exchange.NSE, "INFY", Decimal("0.05"), 1)


@pytest.mark.parametrize(
    "line",
    [
        "5720322,22345,NIFTY15DECFUT,,78.0,2015-12-31,,0.05,75,FUT,NFO-FUT,NFO",
        "256265,1001,NIFTY 50,NIFTY 50,0,,0.0,0.0,0,EQ,INDICES,NSE",
        "645639,1,SILVER15DECFUT,,7800.0,2015-12-31,,1,1,FUT,MCX,MCX",
    ],
)
def test_rows_outside_the_cash_equity_universe_are_skipped(line: str) -> None:
    # GIVEN a derivative, an index, a commodity WHEN read THEN skipped, not bad
    assert listing_of(row(line)) is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("1,1,BROKEN,B,0,,,abc,1,EQ,NSE,NSE", "tick_size"),
        ("1,1,NEG,B,0,,,-0.05,1,EQ,NSE,NSE", "tick_size"),
        ("1,1,NAN,B,0,,,NaN,1,EQ,NSE,NSE", "tick_size"),
        ("1,1,ZERO,B,0,,,0.05,0,EQ,NSE,NSE", "lot_size"),
        ("1,1,FRAC,B,0,,,0.05,1.5,EQ,NSE,NSE", "lot_size"),
        ("1,1,bad sym,B,0,,,0.05,1,EQ,NSE,NSE", "tradingsymbol"),
        ("1,1,SHORT", "columns"),
    ],
)
def test_bad_rows_say_why(line: str, why: str) -> None:
    with pytest.raises(BadRowError, match=why):
        listing_of(row(line))


def test_a_band_comes_from_the_quotes_circuit_limits() -> None:
    listing = InstrumentListing(Exchange.NSE, "INFY", Decimal("0.05"), 1)
    day = date(2026, 12, 1)
    made = instrument_with_band(listing, quote(), day=day, now=NOW)
    assert not isinstance(made, str)
    assert (made.band_lower, made.band_upper, made.band_date) == (
        Decimal("1350.00"),
        Decimal("1650.00"),
        day,
    )
    assert made.freeze_quantity is None


@pytest.mark.parametrize(
    "limits",
    [(None, Decimal(1650)), (Decimal(1350), None), (Decimal(1700), Decimal(1650))],
)
def test_without_usable_circuit_limits_there_is_no_record(
    limits: tuple[Decimal | None, Decimal | None],
) -> None:
    listing = InstrumentListing(Exchange.NSE, "INFY", Decimal("0.05"), 1)
    lower, upper = limits
    made = instrument_with_band(
        listing, quote(lower_circuit=lower, upper_circuit=upper), day=date(2026, 12, 1), now=NOW
    )
    assert isinstance(made, str)
    assert "circuit limits" in made
    assert isinstance(instrument_with_band(listing, None, day=date(2026, 12, 1), now=NOW), str)
