"""Market quotes cached in Redis for about a second, shared by every container."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis

from shared.adapters.redis.client import RedisGuard
from shared.domain.market import DepthLevel, MarketQuote
from shared.domain.models import Exchange

InstrumentKey = tuple[Exchange, str]


class RedisQuoteCache:
    """``quote:{exchange}:{symbol}`` -> the quote's JSON, expiring after ``ttl_ms``.

    Failures raise ``CacheUnavailableError`` (through the guard).
    """

    def __init__(
        self, client: redis.Redis, *, ttl_ms: int, prefix: str = "", guard: RedisGuard
    ) -> None:
        self._client = client
        self._ttl_ms = ttl_ms
        self._prefix = prefix
        self._guard = guard

    def get(self, key: InstrumentKey) -> MarketQuote | None:
        """The cached quote, or ``None`` when absent or expired."""
        with self._guard.call():
            cached = self._client.get(self._key(key))
        return None if cached is None else _decode(cached)

    def put(self, quotes: Sequence[MarketQuote]) -> None:
        """Cache ``quotes`` for ``ttl_ms`` milliseconds, in one round trip."""
        if not quotes:
            return
        with self._guard.call():
            pipe = self._client.pipeline(transaction=False)
            for quote in quotes:
                pipe.set(self._key((quote.exchange, quote.symbol)), _encode(quote), px=self._ttl_ms)
            pipe.execute()

    def _key(self, key: InstrumentKey) -> str:
        return f"{self._prefix}quote:{key[0].value}:{key[1]}"


def _levels(levels: tuple[DepthLevel, ...]) -> list[list[Any]]:
    return [[str(level.price), level.quantity, level.orders] for level in levels]


def _encode(quote: MarketQuote) -> str:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return json.dumps(
        {
            "e": quote.exchange.value,
            "s": quote.symbol,
            "l": text(quote.last_price),
            "b": _levels(quote.bids),
            "a": _levels(quote.asks),
            "v": quote.volume,
            "lc": text(quote.lower_circuit),
            "uc": text(quote.upper_circuit),
            "t": quote.exchange_time.isoformat(),
        },
        separators=(",", ":"),
    )


def _decode(raw: bytes | str) -> MarketQuote:
    doc = json.loads(raw)

    def number(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return MarketQuote(
        exchange=Exchange(doc["e"]),
        symbol=doc["s"],
        last_price=number(doc["l"]),
        bids=tuple(DepthLevel(Decimal(p), q, o) for p, q, o in doc["b"]),
        asks=tuple(DepthLevel(Decimal(p), q, o) for p, q, o in doc["a"]),
        volume=doc["v"],
        lower_circuit=number(doc["lc"]),
        upper_circuit=number(doc["uc"]),
        exchange_time=datetime.fromisoformat(doc["t"]),
    )
