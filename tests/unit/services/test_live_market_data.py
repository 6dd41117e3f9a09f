"""LiveMarketData with in-memory ports: cache first, freshness, cooldown, reasons counted."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.errors import CacheUnavailableError, MarketDataUnavailableError
from shared.domain.market import DepthLevel, MarketQuote
from shared.domain.models import Exchange
from shared.ports import InstrumentKey
from shared.services.market import LiveMarketData

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def quote(age_s: float = 1.0) -> MarketQuote:
    return MarketQuote(
        exchange=Exchange.NSE,
        symbol="INFY",
        last_price=Decimal("1500.00"),
        bids=(DepthLevel(Decimal("1499.95"), 10, 1),),
        asks=(DepthLevel(Decimal("1500.05"), 10, 1),),
        volume=1,
        lower_circuit=Decimal(1350),
        upper_circuit=Decimal(1650),
        exchange_time=NOW - timedelta(seconds=age_s),
    )


class Source:
    max_quotes_per_call = 500

    def __init__(self, answer: MarketQuote | None = None, *, down: bool = False) -> None:
        self.answer = answer
        self.down = down
        self.calls = 0

    def quotes(self, instruments: Sequence[InstrumentKey]) -> dict[InstrumentKey, MarketQuote]:
        self.calls += 1
        if self.down:
            raise MarketDataUnavailableError("Kite market data: could not connect")
        return {k: self.answer for k in instruments if self.answer is not None}

    def instrument_rows(self, exchange: Exchange) -> list[dict[str, str | None]]:
        return []


class Cache:
    def __init__(self, *, down: bool = False) -> None:
        self.entries: dict[InstrumentKey, MarketQuote] = {}
        self.down = down

    def get(self, key: InstrumentKey) -> MarketQuote | None:
        if self.down:
            raise CacheUnavailableError("down")
        return self.entries.get(key)

    def put(self, quotes: Sequence[MarketQuote]) -> None:
        if self.down:
            raise CacheUnavailableError("down")
        for q in quotes:
            self.entries[(q.exchange, q.symbol)] = q


def excluded(out: str) -> list[str]:
    return [
        json.loads(line)["reason"] for line in out.splitlines() if '"MarketDataExcluded"' in line
    ]


def test_a_cached_quote_is_used_without_calling_the_source() -> None:
    # GIVEN a fresh quote in the shared cache
    source, cache = Source(quote()), Cache()
    cache.put([quote()])
    market = LiveMarketData(source, cache, clock=lambda: NOW, max_age_s=30)
    # WHEN routing asks THEN the cached quote answers and the source is not called
    routed = market.quote("INFY")
    assert routed is not None
    assert routed.bid == Decimal("1499.95")
    assert source.calls == 0


def test_a_fetched_quote_is_cached_and_redis_down_is_no_error() -> None:
    # GIVEN an empty cache, then a cache that is down
    source = Source(quote())
    warm = Cache()
    LiveMarketData(source, warm, clock=lambda: NOW, max_age_s=30).quote("INFY")
    down = LiveMarketData(source, Cache(down=True), clock=lambda: NOW, max_age_s=30)
    # THEN the fetched quote was cached, and without Redis the source still answers
    assert (Exchange.NSE, "INFY") in warm.entries
    assert down.quote("INFY") is not None


def test_stale_and_unavailable_quotes_are_counted_with_their_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a stale quote, an unknown symbol and a source that is down
    stale = LiveMarketData(Source(quote(age_s=120)), Cache(), clock=lambda: NOW, max_age_s=30)
    unknown = LiveMarketData(Source(None), Cache(), clock=lambda: NOW, max_age_s=30)
    down = LiveMarketData(Source(down=True), Cache(), clock=lambda: NOW, max_age_s=30)
    # WHEN each is asked THEN none answers, and each refusal is counted by its reason
    assert [m.quote("INFY") for m in (stale, unknown, down)] == [None, None, None]
    assert excluded(capsys.readouterr().out) == ["stale", "unavailable", "unavailable"]


def test_after_a_failure_the_source_rests_for_the_cooldown() -> None:
    # GIVEN a source that fails, on a monotonic clock the test moves
    source = Source(quote(), down=True)
    clock = [0.0]
    market = LiveMarketData(
        source, Cache(), clock=lambda: NOW, max_age_s=30, cooldown_s=1.0, monotonic=lambda: clock[0]
    )
    # WHEN asked twice within the cooldown, then after it (the source back up)
    market.quote("INFY")
    clock[0] = 0.5
    market.quote("INFY")
    calls_within = source.calls
    clock[0] = 1.5
    source.down = False
    recovered = market.quote("INFY")
    # THEN one call within the cooldown, and the next one after it answers
    assert calls_within == 1
    assert recovered is not None
