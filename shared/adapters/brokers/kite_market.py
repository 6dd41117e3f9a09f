"""Kite Connect v3 market quotes and instruments dump (:class:`shared.ports.MarketDataSource`).

Contract (https://kite.trade/docs/connect/v3/market-quotes/):

* ``GET /quote?i=NSE:INFY&i=...`` (at most 500 instruments a call) answers
  ``{"status": "success", "data": {"NSE:INFY": {...}}}`` with ``last_price``, ``volume``,
  ``lower_circuit_limit``, ``upper_circuit_limit``, ``timestamp`` (IST, no offset) and
  ``depth`` (five ``buy`` and ``sell`` levels of ``price``, ``quantity``, ``orders``; empty
  levels are zeros); an instrument Kite does not know is left out of ``data``;
* ``GET /instruments/{exchange}`` answers the day's CSV dump (``instrument_token,
  exchange_token, tradingsymbol, name, last_price, expiry, strike, tick_size, lot_size,
  instrument_type, segment, exchange``), possibly gzip-encoded (urllib3 decodes it);
* both carry ``X-Kite-Version: 3`` and ``Authorization: token api_key:access_token`` of the
  platform's own Kite app (settings and the secret store, never a trader's), and fail as the
  order API does (``error_type``; see ``shared/adapters/brokers/kite.py``).

Every failure is a :class:`~shared.domain.errors.MarketDataUnavailableError` with its reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from shared.adapters.brokers._http import BrokerHttp, HttpAnswer, call_error
from shared.adapters.brokers.kite import API_VERSION, BASE_URL, ERROR_TYPES
from shared.domain.broker_orders import BrokerCallError
from shared.domain.errors import MarketDataUnavailableError
from shared.domain.market import DepthLevel, MarketQuote
from shared.domain.models import Exchange
from shared.domain.risk import IST

MAX_QUOTES_PER_CALL = 500
"""https://kite.trade/docs/connect/v3/market-quotes/#retrieving-full-market-quotes"""
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

InstrumentKey = tuple[Exchange, str]


class KiteMarketData:
    """Kite's market-quote and instruments APIs over urllib3.

    Parameters
    ----------
    api_key
        The platform Kite app's API key.
    access_token
        Returns the platform session's current access token (read from the secret store on
        each call, so a rotated token is used at once); empty when none is configured.
    base_url
        ``https://api.kite.trade``, or the local simulator's URL.
    timeout_s
        Per call.
    """

    max_quotes_per_call = MAX_QUOTES_PER_CALL

    def __init__(
        self,
        *,
        api_key: str,
        access_token: Callable[[], str],
        base_url: str = BASE_URL,
        timeout_s: float = 2.0,
    ) -> None:
        self._api_key = api_key
        self._access_token = access_token
        self._http = BrokerHttp(base_url)
        self._timeout_s = timeout_s

    def quotes(self, instruments: Sequence[InstrumentKey]) -> dict[InstrumentKey, MarketQuote]:
        """``GET /quote`` of ``instruments`` (at most :data:`MAX_QUOTES_PER_CALL`)."""
        if not instruments:
            return {}
        if len(instruments) > MAX_QUOTES_PER_CALL:
            raise ValueError(f"at most {MAX_QUOTES_PER_CALL} instruments per quote call")
        query = urlencode([("i", f"{e.value}:{s}") for e, s in instruments])
        data = self._json(self._get(f"/quote?{query}"))
        if not isinstance(data, Mapping):
            raise MarketDataUnavailableError("Kite quote answer carries no data object")
        quotes: dict[InstrumentKey, MarketQuote] = {}
        for exchange, symbol in instruments:
            entry = data.get(f"{exchange.value}:{symbol}")
            if isinstance(entry, Mapping):
                quotes[(exchange, symbol)] = quote_of(exchange, symbol, entry)
        return quotes

    def instrument_rows(self, exchange: Exchange) -> Iterable[Mapping[str, str | None]]:
        """``GET /instruments/{exchange}``: the rows of the day's dump."""
        answer = self._get(f"/instruments/{exchange.value}")
        if answer.status >= 400:
            raise self._refused(answer)
        text = answer.raw.decode("utf-8", "replace")
        reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
        if reader.fieldnames is None or "tradingsymbol" not in reader.fieldnames:
            raise MarketDataUnavailableError(
                f"Kite instruments dump of {exchange.value} has no tradingsymbol column"
            )
        return list(reader)

    def _get(self, path: str) -> HttpAnswer:
        token = self._access_token()
        if not token:
            raise MarketDataUnavailableError(
                "no platform Kite access token is configured for market data"
            )
        headers = {
            "X-Kite-Version": API_VERSION,
            "Authorization": f"token {self._api_key}:{token}",
        }
        try:
            return self._http.request("GET", path, headers=headers, timeout_s=self._timeout_s)
        except BrokerCallError as exc:
            raise MarketDataUnavailableError(f"Kite market data: {exc.message}") from exc

    def _json(self, answer: HttpAnswer) -> Any:
        body = answer.body
        if answer.status >= 400 or (isinstance(body, Mapping) and body.get("status") == "error"):
            raise self._refused(answer)
        if not isinstance(body, Mapping) or body.get("status") != "success":
            snippet = answer.raw[:200].decode("utf-8", "replace")
            raise MarketDataUnavailableError(
                f"unreadable Kite quote answer (HTTP {answer.status}): {snippet}"
            )
        return body.get("data")

    @staticmethod
    def _refused(answer: HttpAnswer) -> MarketDataUnavailableError:
        body = answer.body if isinstance(answer.body, Mapping) else {}
        error = call_error(
            answer,
            code=body.get("error_type"),
            message=body.get("message"),
            classify=lambda _status, code: ERROR_TYPES.get(code) if code else None,
        )
        return MarketDataUnavailableError(
            f"Kite refused the market-data call ({error.kind.value}, HTTP {answer.status}): "
            f"{error.message}"
        )


def quote_of(exchange: Exchange, symbol: str, entry: Mapping[str, Any]) -> MarketQuote:
    """Read one instrument's entry of a ``/quote`` answer.

    Raises
    ------
    MarketDataUnavailableError
        When the entry's timestamp or prices cannot be read.
    """
    depth = entry.get("depth") if isinstance(entry.get("depth"), Mapping) else {}
    assert isinstance(depth, Mapping)
    try:
        stamped = datetime.strptime(str(entry.get("timestamp")), TIMESTAMP_FORMAT)
        return MarketQuote(
            exchange=exchange,
            symbol=symbol,
            last_price=_positive(entry.get("last_price")),
            bids=_levels(depth.get("buy")),
            asks=_levels(depth.get("sell")),
            volume=int(entry.get("volume") or 0),
            lower_circuit=_positive(entry.get("lower_circuit_limit")),
            upper_circuit=_positive(entry.get("upper_circuit_limit")),
            exchange_time=stamped.replace(tzinfo=IST),
        )
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise MarketDataUnavailableError(
            f"unreadable Kite quote of {exchange.value}:{symbol}: {exc}"
        ) from exc


def _positive(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"price {value!r} is not a number")
    return number if number > 0 else None


def _levels(raw: Any) -> tuple[DepthLevel, ...]:
    if not isinstance(raw, list):
        return ()
    levels = []
    for level in raw:
        price = _positive(level.get("price")) if isinstance(level, Mapping) else None
        if price is None:
            continue  # Kite pads an empty level with zeros
        levels.append(
            DepthLevel(price, int(level.get("quantity") or 0), int(level.get("orders") or 0))
        )
    return tuple(levels)
