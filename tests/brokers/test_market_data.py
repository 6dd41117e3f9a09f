"""Market data over real HTTP: the Kite adapter against the Kite simulator's /quote and
/instruments, the Redis quote cache, the instrument-master load into Postgres and the
statistics refresh of the profiles (docs/market-data.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from pydantic import SecretStr

from local import seed
from local.simulators import RunningSimulator, start_simulator
from local.simulators._core import Behaviour, ErrorKind
from local.simulators.kite import KiteSimulator
from local.simulators.market import DUMP_COLUMNS, Listing
from shared.adapters.brokers.kite import KiteClient
from shared.adapters.brokers.kite_market import KiteMarketData
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.market import PostgresMarketStatistics
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import PostgresProfileRepository
from shared.adapters.postgres.risk import PostgresInstrumentRepository
from shared.adapters.redis.client import RedisGuard
from shared.adapters.redis.quote_cache import RedisQuoteCache
from shared.domain.broker_orders import BrokerAccount, BrokerOrderRequest
from shared.domain.errors import MarketDataUnavailableError
from shared.domain.models import Exchange
from shared.domain.risk import IST
from shared.services.market import LiveMarketData, MarketRefresh

KEY = "market-key"
TOKEN = "market-token"
RELIANCE = (Exchange.NSE, "RELIANCE")


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def kite() -> Iterator[RunningSimulator]:
    running = start_simulator("kite", api_key=KEY, access_token=TOKEN)
    try:
        yield running
    finally:
        running.stop()


def sim_of(running: RunningSimulator) -> KiteSimulator:
    assert isinstance(running.sim, KiteSimulator)
    return running.sim


@pytest.fixture
def source(kite: RunningSimulator) -> KiteMarketData:
    return KiteMarketData(api_key=KEY, access_token=lambda: TOKEN, base_url=kite.url)


@pytest.fixture
def quote_cache(redis_client: redis.Redis, redis_prefix: str) -> RedisQuoteCache:
    return RedisQuoteCache(redis_client, ttl_ms=1000, prefix=redis_prefix, guard=RedisGuard())


def quote_calls(running: RunningSimulator) -> int:
    return sum(1 for _, path, _, _ in running.sim.requests if path.startswith("/quote"))


# -- the adapter against the simulator -----------------------------------------------------------


def test_a_quote_carries_price_depth_volume_and_circuit_limits(source: KiteMarketData) -> None:
    # GIVEN the simulator's market WHEN a listed and an unlisted symbol are asked for
    quotes = source.quotes([RELIANCE, (Exchange.NSE, "NOSUCH")])
    # THEN the listed one has a two-sided book around its price, volume and the day's band;
    # the unlisted one is absent
    assert set(quotes) == {RELIANCE}
    quote = quotes[RELIANCE]
    assert quote.bid is not None
    assert quote.ask is not None
    assert quote.bid < quote.last_price < quote.ask  # type: ignore[operator]
    assert len(quote.bids) == len(quote.asks) == 5
    assert quote.volume > 0
    assert quote.lower_circuit == Decimal("1165.90")
    assert quote.upper_circuit == Decimal("1424.90")
    assert quote.depth == sum(level.quantity for level in (*quote.bids, *quote.asks))


def test_the_quote_follows_the_simulated_book(
    kite: RunningSimulator, source: KiteMarketData
) -> None:
    # GIVEN a fill at 1300 and a resting buy limit at 1299.90 placed through the order API
    client = KiteClient(kite.url)
    account = BrokerAccount(account_id="t", api_key=KEY, access_token=SecretStr(TOKEN))
    sim_of(kite).script(
        Behaviour(outcome="fill", fill_price=Decimal("1300.00")), Behaviour(outcome="open")
    )
    before = source.quotes([RELIANCE])[RELIANCE].volume
    for order_type, price in (("MARKET", None), ("LIMIT", Decimal("1299.90"))):
        request = BrokerOrderRequest.model_validate(
            {
                "tag": "t1",
                "symbol": "RELIANCE",
                "exchange": "NSE",
                "side": "BUY",
                "quantity": 250,
                "order_type": order_type,
                "price": price,
                "product": "CNC",
            }
        )
        client.place(account, request, timeout_s=5)
    # WHEN the quote is asked for
    quote = source.quotes([RELIANCE])[RELIANCE]
    # THEN the last price is the fill's, the volume counts it and the resting order is on the bid
    assert quote.last_price == Decimal("1300.00")
    assert quote.volume == before + 250
    assert any(level.price == Decimal("1299.90") and level.quantity >= 250 for level in quote.bids)


def test_the_instruments_dump_has_kites_columns(source: KiteMarketData) -> None:
    # GIVEN the simulator WHEN the NSE dump is read THEN its columns are Kite's, NSE rows only
    rows = list(source.instrument_rows(Exchange.NSE))
    assert rows
    assert tuple(rows[0]) == DUMP_COLUMNS
    assert {r["exchange"] for r in rows} == {"NSE"}
    assert {r["instrument_type"] for r in rows} == {"EQ"}


@pytest.mark.parametrize("kind", ["token", "server", "network", "rate", "not_json", "permission"])
def test_a_refused_call_is_unavailable_with_its_reason(
    kite: RunningSimulator, source: KiteMarketData, kind: ErrorKind
) -> None:
    # GIVEN the broker answers the next call with an error WHEN a quote is asked for
    sim_of(kite).fail_next(kind)
    with pytest.raises(MarketDataUnavailableError) as caught:
        source.quotes([RELIANCE])
    # THEN the failure says why (never a bare exception)
    assert "Kite" in str(caught.value)


def test_a_broker_that_is_down_is_unavailable(kite: RunningSimulator) -> None:
    # GIVEN the simulator stopped
    source = KiteMarketData(api_key=KEY, access_token=lambda: TOKEN, base_url=kite.url)
    kite.stop()
    # WHEN a quote and a dump are asked for THEN both are unavailable, with the reason
    with pytest.raises(MarketDataUnavailableError, match="could not connect"):
        source.quotes([RELIANCE])
    with pytest.raises(MarketDataUnavailableError, match="could not connect"):
        list(source.instrument_rows(Exchange.NSE))


def test_without_a_platform_token_nothing_is_called(kite: RunningSimulator) -> None:
    # GIVEN no token in the secret store WHEN a quote is asked for
    source = KiteMarketData(api_key=KEY, access_token=lambda: "", base_url=kite.url)
    with pytest.raises(MarketDataUnavailableError, match="no platform Kite access token"):
        source.quotes([RELIANCE])
    # THEN the broker was not called at all
    assert quote_calls(kite) == 0


# -- live quotes: cache and staleness ----------------------------------------------------------


def test_quotes_are_shared_through_redis_for_one_second(
    kite: RunningSimulator, source: KiteMarketData, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN two containers' market data over one Redis cache
    first = LiveMarketData(source, quote_cache, clock=utc_now, max_age_s=30)
    second = LiveMarketData(source, quote_cache, clock=utc_now, max_age_s=30)
    # WHEN both ask for the quote within the second, and again after it
    a = first.quote("RELIANCE")
    b = second.quote("RELIANCE")
    within = quote_calls(kite)
    time.sleep(1.1)
    c = second.quote("RELIANCE")
    # THEN Kite was asked once within the second, again after it, and the quotes agree
    assert a is not None
    assert a == b == c
    assert within == 1
    assert quote_calls(kite) == 2


def test_a_stale_quote_is_not_used(
    kite: RunningSimulator, source: KiteMarketData, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN a feed whose quotes the exchange stamped two minutes ago
    sim_of(kite).market.stale_by_s = 120
    market = LiveMarketData(source, quote_cache, clock=utc_now, max_age_s=30)
    # WHEN routing asks for the quote THEN there is none (excluded as stale), and no error
    assert market.quote("RELIANCE") is None
    assert market.market_quote(RELIANCE) is None


def test_a_broker_outage_gives_no_quote_and_one_timeout_per_cooldown(
    kite: RunningSimulator, source: KiteMarketData, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN the broker failing WHEN routing asks twice within the cooldown
    sim_of(kite).fail_next("server", "server")
    market = LiveMarketData(source, quote_cache, clock=utc_now, max_age_s=30, cooldown_s=60)
    answers = [market.quote("RELIANCE"), market.quote("RELIANCE")]
    # THEN both answers are "no quote" and the broker was called once
    assert answers == [None, None]
    assert quote_calls(kite) == 1


def test_redis_down_still_quotes_from_the_source(
    kite: RunningSimulator, source: KiteMarketData
) -> None:
    # GIVEN a cache whose Redis nobody listens on
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cache = RedisQuoteCache(dead, ttl_ms=1000, guard=RedisGuard())
    market = LiveMarketData(source, cache, clock=utc_now, max_age_s=30)
    # WHEN a quote is asked for THEN it comes from Kite
    quote = market.quote("RELIANCE")
    assert quote is not None
    assert quote.last is not None


# -- the instrument master ---------------------------------------------------------------------


def refresh_of(
    source: KiteMarketData,
    db: Database,
    cache: RedisQuoteCache,
    *,
    refreshed: list[str] | None = None,
) -> MarketRefresh:
    sink = refreshed if refreshed is not None else []
    return MarketRefresh(
        source=source,
        instruments=PostgresInstrumentRepository(db),
        statistics=PostgresMarketStatistics(db),
        cache=cache,
        on_statistics=sink.extend,
        clock=utc_now,
        max_age_s=30,
    )


def test_the_daily_load_is_idempotent(
    source: KiteMarketData, db: Database, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN an empty instrument master
    refresh = refresh_of(source, db, quote_cache)
    # WHEN the day's load runs twice
    first = refresh.load_instruments()
    second = refresh.load_instruments()
    # THEN the first writes every listing with today's band, the second changes nothing
    listed = len(seed.SYMBOLS) * 2
    assert (first.listed, first.written, first.unchanged) == (listed, listed, 0)
    assert (second.listed, second.written, second.unchanged) == (listed, 0, listed)
    stored = PostgresInstrumentRepository(db).get("RELIANCE", Exchange.NSE)
    assert stored is not None
    assert (stored.band_lower, stored.band_upper) == (Decimal("1165.90"), Decimal("1424.90"))
    assert stored.band_date == datetime.now(UTC).astimezone(IST).date()
    assert stored.lot_size == 1
    assert stored.tick_size == Decimal("0.05")


def test_a_changed_band_is_written_again(
    kite: RunningSimulator, source: KiteMarketData, db: Database, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN a loaded master, then the exchange moves one symbol's band
    refresh = refresh_of(source, db, quote_cache)
    refresh.load_instruments()
    sim_of(kite).market.add(
        [Listing("NSE", "RELIANCE", Decimal("1295.40"), 100_015, band_pct=Decimal(5))]
    )
    # WHEN the load runs again THEN only that record is written
    again = refresh.load_instruments()
    assert again.written == 1
    stored = PostgresInstrumentRepository(db).get("RELIANCE", Exchange.NSE)
    assert stored is not None
    assert stored.band_upper == Decimal("1360.15")


def test_bad_rows_are_counted_and_skipped_never_fatal(
    kite: RunningSimulator, source: KiteMarketData, db: Database, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN a dump with a broken tick size, a zero lot, a bad symbol, a short row, an index
    # (segment INDICES, as Kite lists them) and a well-formed equity the quote API does not know
    sim_of(kite).market.bad_rows = [
        "1,1,BROKEN,BROKEN LTD,0,,0.0,abc,1,EQ,NSE,NSE",
        "2,1,ZEROLOT,ZERO LTD,0,,0.0,0.05,0,EQ,NSE,NSE",
        "3,1,bad symbol!,X,0,,0.0,0.05,1,EQ,NSE,NSE",
        "256265,1001,NIFTY 50,NIFTY 50,0,,0.0,0.0,0,EQ,INDICES,NSE",
        "5,1,SHORT,NSE",
        "6,1,UNQUOTED,UNQUOTED LTD,0,,0.0,0.05,1,EQ,NSE,NSE",
    ]
    # WHEN the load runs
    report = refresh_of(source, db, quote_cache).load_instruments()
    # THEN the good rows load, the bad ones are counted with their reasons, the index is
    # skipped (not routed), the unquoted one has no band
    assert report.written == len(seed.SYMBOLS) * 2
    assert report.bad_rows == 4
    assert report.no_band == 1
    assert any("tick_size" in r for r in report.reasons)
    assert any("lot_size" in r for r in report.reasons)
    assert any("UNQUOTED" in r for r in report.reasons)
    assert PostgresInstrumentRepository(db).get("UNQUOTED", Exchange.NSE) is None


def test_a_load_with_the_broker_down_writes_nothing(
    kite: RunningSimulator, source: KiteMarketData, db: Database, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN the broker down WHEN the load runs THEN it says why and nothing is written
    kite.stop()
    with pytest.raises(MarketDataUnavailableError):
        refresh_of(source, db, quote_cache).load_instruments()
    assert PostgresInstrumentRepository(db).get("RELIANCE", Exchange.NSE) is None


# -- market statistics of the routed symbols ---------------------------------------------------


def seeded_profiles(db: Database) -> PostgresProfileRepository:
    brokers = PostgresBrokerRepository(db)
    for broker in seed.seed_brokers():
        brokers.upsert(broker)
    profiles = PostgresProfileRepository(db)
    for profile in seed.seed_profiles(utc_now()):
        if profile.symbol in ("RELIANCE", "TCS"):
            profiles.upsert(profile)
    return profiles


def test_statistics_refresh_writes_the_quote_into_every_profile(
    source: KiteMarketData, db: Database, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN seeded profiles of two symbols at every broker
    profiles = seeded_profiles(db)
    refreshed: list[str] = []
    # WHEN the statistics refresh runs
    report = refresh_of(source, db, quote_cache, refreshed=refreshed).refresh_statistics()
    # THEN both symbols are refreshed in every broker's profile, from the quote
    assert (report.symbols, report.refreshed, report.stale, report.unavailable) == (2, 2, 0, 0)
    assert report.profiles == 2 * len(seed.BROKERS)
    assert sorted(refreshed) == ["RELIANCE", "TCS"]
    quote = source.quotes([RELIANCE])[RELIANCE]
    for profile in profiles.list_for_symbol("RELIANCE"):
        assert profile.order_book_depth == quote.depth
        assert profile.last_price == float(quote.last_price or 0)
        assert profile.current_spread_bps == pytest.approx(quote.spread_bps, abs=1e-3)
        assert 0 < profile.recent_volume <= quote.volume


def test_stale_statistics_are_excluded_with_their_reason(
    kite: RunningSimulator, source: KiteMarketData, db: Database, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN seeded profiles and a feed stuck two minutes ago
    profiles = seeded_profiles(db)
    before = profiles.list_for_symbol("RELIANCE")
    sim_of(kite).market.stale_by_s = 120
    # WHEN the statistics refresh runs
    report = refresh_of(source, db, quote_cache).refresh_statistics()
    # THEN nothing changes, and the report says the quotes were stale
    assert (report.refreshed, report.stale, report.profiles) == (0, 2, 0)
    assert all("old" in r for r in report.reasons)
    assert profiles.list_for_symbol("RELIANCE") == before


def test_statistics_refresh_with_the_broker_down_reports_and_changes_nothing(
    kite: RunningSimulator, source: KiteMarketData, db: Database, quote_cache: RedisQuoteCache
) -> None:
    # GIVEN seeded profiles and the broker down
    profiles = seeded_profiles(db)
    before = profiles.list_for_symbol("TCS")
    kite.stop()
    # WHEN the statistics refresh runs THEN every symbol is unavailable, nothing raised
    report = refresh_of(source, db, quote_cache).refresh_statistics()
    assert (report.symbols, report.refreshed, report.unavailable) == (2, 0, 2)
    assert profiles.list_for_symbol("TCS") == before
