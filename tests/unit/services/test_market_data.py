"""The 1-second in-process quote cache."""

from __future__ import annotations

import itertools
from decimal import Decimal

from shared.domain.models import Quote
from shared.services.profiles import CachedMarketData


class CountingSource:
    def __init__(self) -> None:
        self.calls = 0

    def quote(self, symbol: str) -> Quote | None:
        self.calls += 1
        return Quote(bid=Decimal("100.00"), ask=Decimal("100.10"))


def test_quotes_are_fetched_once_per_ttl() -> None:
    # GIVEN a cache with a 1-second TTL on a clock the test moves
    now = [0.0]
    source = CountingSource()
    cache = CachedMarketData(source, ttl_s=1.0, timer=lambda: now[0])
    # WHEN the same symbol is asked at 0 s, 0.5 s and 1.5 s
    first = cache.quote("TCS")
    now[0] = 0.5
    second = cache.quote("TCS")
    now[0] = 1.5
    third = cache.quote("TCS")
    # THEN the source was asked once within the second and again after it
    assert first == second == third
    assert source.calls == 2


def test_entries_expiring_in_the_middle_of_a_lookup_are_refetched_not_an_error() -> None:
    # GIVEN a clock that moves a quarter of the TTL on every reading, so entries expire between
    # any two readings of one look-up (a check-then-get look-up raised KeyError like this)
    ticks = itertools.count(step=0.25)
    source = CountingSource()
    cache = CachedMarketData(source, ttl_s=1.0, timer=lambda: next(ticks))
    # WHEN the symbol is asked many times
    quotes = [cache.quote("INFY") for _ in range(40)]
    # THEN every call answers with a quote, refetching as entries expire
    assert all(q is not None and q.bid == Decimal("100.00") for q in quotes)
    assert 1 < source.calls < 40
