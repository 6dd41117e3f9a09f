"""Market data for routing and risk, and the scheduled refresh (docs/market-data.md).

:class:`LiveMarketData` is the :class:`shared.ports.MarketData` of a deployed stage: quotes
from the platform's market-data source, shared through a one-second cache, used only while
fresh. :class:`MarketRefresh` is what the ``market_refresh`` function runs: the daily load of
the instrument master (trading rules and the day's band) and the frequent refresh of the routed
symbols' market statistics in the broker profiles.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime

from shared.domain.errors import CacheUnavailableError, MarketDataUnavailableError
from shared.domain.market import (
    BadRowError,
    InstrumentListing,
    LoadReport,
    MarketJob,
    MarketQuote,
    MarketStatistics,
    StatisticsReport,
    batches,
    instrument_with_band,
    listing_of,
    staleness,
    statistics_of,
)
from shared.domain.models import Exchange, Quote
from shared.domain.risk import IST, Instrument
from shared.observability import emit_metric
from shared.ports import (
    InstrumentKey,
    InstrumentRepository,
    MarketDataSource,
    MarketStatisticsStore,
    QuoteCache,
)

logger = logging.getLogger("order_router.market")

EXCLUDED_METRIC = "MarketDataExcluded"
"""Quotes not used, by ``reason`` (``stale``, ``unavailable``)."""


class LiveMarketData:
    """Fresh quotes for routing and risk (:class:`shared.ports.MarketData`).

    A quote is read from the shared cache, else from the source (and cached); it is used only
    when the exchange stamped it at most ``max_age_s`` ago. A stale or unavailable quote is
    ``None`` to the caller (routing then has no arrival reference and risk values a market
    order at the top of the day's band), logged with its reason and counted in
    ``MarketDataExcluded``: never an error to the trader. After a failure the source is left
    alone for ``cooldown_s``, so an outage costs one timeout, not one per order.
    """

    def __init__(
        self,
        source: MarketDataSource,
        cache: QuoteCache,
        *,
        clock: Callable[[], datetime],
        max_age_s: float,
        cooldown_s: float = 1.0,
        exchange: Exchange = Exchange.NSE,
        monotonic: Callable[[], float] = time.monotonic,
        service_name: str = "order-router",
    ) -> None:
        self._source = source
        self._cache = cache
        self._clock = clock
        self._max_age_s = max_age_s
        self._cooldown_s = cooldown_s
        self._exchange = exchange
        self._monotonic = monotonic
        self._service_name = service_name
        self._down_until = 0.0

    def quote(self, symbol: str) -> Quote | None:
        """The fresh quote of ``symbol`` on the default exchange, or ``None`` (see the class)."""
        market = self.market_quote((self._exchange, symbol))
        return market.as_quote() if market is not None else None

    def statistics(self, symbol: str) -> MarketStatistics | None:
        """The market statistics of ``symbol`` on the default exchange from a fresh quote.

        What a day-one profile's market figures start from; ``None`` as :meth:`quote`.
        """
        market = self.market_quote((self._exchange, symbol))
        return statistics_of(market) if market is not None else None

    def market_quote(self, key: InstrumentKey) -> MarketQuote | None:
        """The fresh full quote (depth, volume, circuit limits) of ``key``, or ``None``."""
        quote = self._cached(key)
        if quote is None:
            quote = self._fetch(key)
            if quote is None:
                return None
        reason = staleness(quote, self._clock(), self._max_age_s)
        if reason is not None:
            self._exclude("stale", reason)
            return None
        return quote

    def _cached(self, key: InstrumentKey) -> MarketQuote | None:
        with suppress(CacheUnavailableError):
            return self._cache.get(key)
        return None

    def _fetch(self, key: InstrumentKey) -> MarketQuote | None:
        if self._monotonic() < self._down_until:
            return None
        try:
            quote = self._source.quotes([key]).get(key)
        except MarketDataUnavailableError as exc:
            self._down_until = self._monotonic() + self._cooldown_s
            self._exclude("unavailable", str(exc))
            return None
        if quote is None:
            self._exclude("unavailable", f"no quote of {key[0].value}:{key[1]}")
            return None
        with suppress(CacheUnavailableError):
            self._cache.put([quote])
        return quote

    def _exclude(self, reason: str, message: str) -> None:
        logger.warning("market quote not used (%s): %s", reason, message)
        emit_metric(EXCLUDED_METRIC, 1, service=self._service_name, dimensions={"reason": reason})


class MarketRefresh:
    """The scheduled market-data jobs.

    Parameters
    ----------
    source
        The platform's market-data source.
    instruments
        The instrument master.
    statistics
        The profiles' market statistics.
    cache
        The shared quote cache (the refresh warms it).
    on_statistics
        Called with the symbols whose profiles changed (refreshes their profile cache).
    clock
        Current time (UTC, tz-aware).
    max_age_s
        The freshness a quote needs for its statistics to be used.
    exchanges
        Whose instruments dump is loaded.
    """

    def __init__(
        self,
        *,
        source: MarketDataSource,
        instruments: InstrumentRepository,
        statistics: MarketStatisticsStore,
        cache: QuoteCache,
        on_statistics: Callable[[Sequence[str]], None],
        clock: Callable[[], datetime],
        max_age_s: float,
        exchanges: Sequence[Exchange] = (Exchange.NSE, Exchange.BSE),
    ) -> None:
        self._source = source
        self._instruments = instruments
        self._statistics = statistics
        self._cache = cache
        self._on_statistics = on_statistics
        self._clock = clock
        self._max_age_s = max_age_s
        self._exchanges = exchanges

    def run(self, job: MarketJob) -> LoadReport | StatisticsReport:
        """Run one job now (the admin trigger, the CLI): see the two below."""
        return self.load_instruments() if job == "instruments" else self.refresh_statistics()

    def load_instruments(self) -> LoadReport:
        """Load the day's instrument master: the dump's rules with the quote's circuit limits.

        Idempotent: a repeated load on the same day changes nothing (``unchanged`` counts it).
        A bad row is counted and skipped; a listing without a usable band is not written.

        Raises
        ------
        MarketDataUnavailableError
            When a dump or a quote batch cannot be fetched (nothing of that batch is written).
        """
        report = LoadReport()
        listings: dict[InstrumentKey, InstrumentListing] = {}
        for exchange in self._exchanges:
            self._read_dump(self._source.instrument_rows(exchange), report, listings)
        report.listed = len(listings)
        now = self._clock()
        day = now.astimezone(IST).date()
        records: list[Instrument] = []
        for batch in batches(list(listings), self._source.max_quotes_per_call):
            quotes = self._source.quotes(batch)
            for key in batch:
                made = instrument_with_band(listings[key], quotes.get(key), day=day, now=now)
                if isinstance(made, str):
                    report.refuse(made, bad=False)
                else:
                    records.append(made)
        report.written = self._instruments.upsert_many(records)
        report.unchanged = len(records) - report.written
        logger.info("instrument master loaded: %s", report.as_dict())
        return report

    @staticmethod
    def _read_dump(
        rows: Iterable[Mapping[str, str | None]],
        report: LoadReport,
        listings: dict[InstrumentKey, InstrumentListing],
    ) -> None:
        for row in rows:
            report.rows += 1
            try:
                listing = listing_of(row)
            except BadRowError as exc:
                report.refuse(str(exc), bad=True)
                continue
            if listing is not None:
                listings[(listing.exchange, listing.symbol)] = listing

    def refresh_statistics(self) -> StatisticsReport:
        """Refresh spread, depth, volume and last price of every routed symbol's profiles.

        A stale quote (the market is closed, the feed stuck) or a missing one leaves the
        symbol's statistics as they were, counted with its reason; an unreachable source
        leaves every symbol so (``unavailable``) rather than fail.
        """
        report = StatisticsReport()
        symbols = self._statistics.routed_symbols()
        report.symbols = len(symbols)
        keys = [(Exchange.NSE, s) for s in symbols]
        fresh: list[MarketStatistics] = []
        for batch in batches(keys, self._source.max_quotes_per_call):
            try:
                quotes = self._source.quotes(batch)
            except MarketDataUnavailableError as exc:
                for _, symbol in batch:
                    report.exclude(f"{symbol}: {exc}", stale=False)
                continue
            fresh.extend(self._judge(batch, quotes, report))
        report.profiles = self._statistics.apply(fresh) if fresh else 0
        report.refreshed = len(fresh)
        if fresh:
            self._on_statistics([s.symbol for s in fresh])
        logger.info("market statistics refreshed: %s", report.as_dict())
        return report

    def _judge(
        self,
        batch: Sequence[InstrumentKey],
        quotes: Mapping[InstrumentKey, MarketQuote],
        report: StatisticsReport,
    ) -> list[MarketStatistics]:
        now = self._clock()
        fresh: list[MarketStatistics] = []
        for key in batch:
            quote = quotes.get(key)
            if quote is None:
                report.exclude(f"{key[1]}: no quote", stale=False)
                continue
            reason = staleness(quote, now, self._max_age_s)
            if reason is not None:
                report.exclude(reason, stale=True)
                continue
            fresh.append(statistics_of(quote))
        with suppress(CacheUnavailableError):
            self._cache.put(list(quotes.values()))
        return fresh
