"""Reading broker profiles: Redis first, Postgres on a miss, and never fail because of Redis."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import suppress
from decimal import Decimal
from typing import cast

from cachetools import TTLCache

from shared.domain.errors import CacheUnavailableError
from shared.domain.models import BrokerProfile, Quote
from shared.domain.orders import TICK_SIZE, round_to_tick
from shared.ports import (
    BrokerRepository,
    MarketData,
    ProfileCache,
    ProfileRepository,
    RoutingInputs,
)


class ProfileService:
    """Read-through cache of broker profiles (the specification's 5-minute Redis cache).

    The list of enabled brokers changes rarely (an operator edits the ``brokers`` table), so it
    is kept in process for ``broker_list_ttl_s``; with it, a read is one Redis MGET for every
    broker of the symbol, and Postgres is asked only when an entry is missing or Redis is down.
    """

    def __init__(
        self,
        profiles: ProfileRepository,
        cache: ProfileCache,
        brokers: BrokerRepository,
        *,
        inputs: RoutingInputs,
        broker_list_ttl_s: float = 60.0,
    ) -> None:
        self._profiles = profiles
        self._cache = cache
        self._brokers = brokers
        self._inputs = inputs
        self._broker_ids: TTLCache[str, tuple[str, ...]] = TTLCache(
            maxsize=1, ttl=broker_list_ttl_s
        )

    def broker_ids(self) -> tuple[str, ...]:
        """Ids of the enabled brokers (cached in process)."""
        ids = self._broker_ids.get("all")
        if ids is None:
            ids = tuple(b.broker_id for b in self._brokers.list_enabled())
            self._broker_ids["all"] = ids
        return ids

    def profiles_for(self, symbol: str) -> list[BrokerProfile]:
        """Profiles of every enabled broker that has one for ``symbol``, by broker id.

        Raises
        ------
        DataUnavailableError
            Only when Postgres is needed (a cache miss or Redis down) and cannot be reached.
        """
        # One read path: the rate counts come along in the same MGET and cost a few bytes.
        return self.profiles_and_counts(symbol)[0]

    def profiles_and_counts(self, symbol: str) -> tuple[list[BrokerProfile], dict[str, int]]:
        """:meth:`profiles_for` and the orders sent to each broker this second, read together.

        With Redis down the counts are empty: rate limits protect the broker relationship, and
        a broker's own limit still answers with a reject, which cascades.

        Raises
        ------
        DataUnavailableError
            Only when Postgres is needed (a cache miss or Redis down) and cannot be reached.
        """
        broker_ids = self.broker_ids()
        try:
            cached, counts = self._inputs.read(symbol, broker_ids)
        except CacheUnavailableError:
            return self._profiles.list_for_symbol(symbol), {}
        if len(cached) == len(broker_ids):
            return [p for b in broker_ids if (p := cached[b]) is not None], counts
        return self.refresh(symbol), counts

    def refresh(self, symbol: str) -> list[BrokerProfile]:
        """Load the symbol's profiles from Postgres and rewrite the cache (refresh-on-write)."""
        profiles = self._profiles.list_for_symbol(symbol)
        if not profiles:
            # A symbol nobody has a profile for routes on day-one priors; caching "no profile"
            # for every broker would hide the rows its first outcomes create for the TTL.
            return profiles
        by_broker: dict[str, BrokerProfile | None] = dict.fromkeys(self.broker_ids())
        by_broker.update({p.broker_id: p for p in profiles})
        # Postgres already answered: a cache that cannot be written is repaired by a later read.
        with suppress(CacheUnavailableError):
            self._cache.put_many(symbol, by_broker)
        return profiles

    def day_one(self, symbol: str, template: BrokerProfile) -> list[BrokerProfile]:
        """Profiles from priors for a symbol no broker has one for.

        Never cached: the first outcome creates the symbol's rows, and the next read finds them.

        Raises
        ------
        DataUnavailableError
            Postgres cannot be reached.
        """
        return self._profiles.day_one(symbol, template)

    def store(self, profiles: Iterable[BrokerProfile]) -> None:
        """Write updated profiles to the cache (after the database write committed).

        One round trip per symbol: a batch of reports mostly touches one or two symbols.
        """
        by_symbol: dict[str, dict[str, BrokerProfile | None]] = defaultdict(dict)
        for profile in profiles:
            by_symbol[profile.symbol][profile.broker_id] = profile
        # Postgres holds the truth; a stale entry expires within the TTL.
        with suppress(CacheUnavailableError):
            for symbol, by_broker in by_symbol.items():
                self._cache.put_many(symbol, by_broker)


_MISSING = object()


class CachedMarketData:
    """The specification's in-process market-data cache with a 1-second TTL."""

    def __init__(
        self,
        source: MarketData,
        *,
        ttl_s: float = 1.0,
        maxsize: int = 4096,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._quotes: TTLCache[str, Quote | None] = TTLCache(
            maxsize=maxsize, ttl=ttl_s, timer=timer
        )

    def quote(self, symbol: str) -> Quote | None:
        """The quote of ``symbol``, from the source at most once a second."""
        # One look-up, never "in" then "[]": the entry can expire between the two.
        cached = self._quotes.get(symbol, _MISSING)
        if cached is not _MISSING:
            return cast("Quote | None", cached)
        quote = self._source.quote(symbol)
        self._quotes[symbol] = quote
        return quote


class ProfileQuotes:
    """:class:`shared.ports.MarketData` from the profiles: last price and spread.

    Until a market-data feed is wired in, the freshest ``last_price`` among the brokers'
    profiles and the narrowest spread they report give the arrival quote; paper brokers fill
    against it.
    """

    def __init__(self, profiles: ProfileService) -> None:
        self._profiles = profiles

    def quote(self, symbol: str) -> Quote | None:
        """Bid/ask around the last price, or ``None`` when no profile knows a price."""
        priced = [p for p in self._profiles.profiles_for(symbol) if p.last_price is not None]
        if not priced:
            return None
        latest = max(priced, key=lambda p: p.last_updated)
        last = round_to_tick(Decimal(str(latest.last_price)))
        spread_bps = min(p.current_spread_bps for p in priced)
        half = max(TICK_SIZE, round_to_tick(last * Decimal(str(spread_bps)) / 20_000))
        return Quote(bid=last - half, ask=last + half, last=last)
