"""Pre-trade risk: the rules of ``shared.domain.risk`` applied to every order before routing.

The service gathers what the rules need through ports, raises :class:`RiskRejectedError` with
the first rule an order breaks (the handler answers 422) and counts the refusal in the metric
``RiskRejections`` with the rule as its dimension. Nothing is stored for a refused order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared.domain.errors import RiskRejectedError
from shared.domain.models import Exchange, OrderRequest
from shared.domain.risk import (
    Instrument,
    MarketCalendar,
    RiskFacts,
    TraderLimits,
    evaluate,
    market_price_for,
)
from shared.observability import emit_metric
from shared.ports import (
    InstrumentRepository,
    MarketData,
    RiskStateReader,
    TraderLimitOverrides,
)

RISK_REJECTIONS_METRIC = "RiskRejections"


@dataclass(frozen=True)
class RiskLimits:
    """The default per-trader limits (settings); a trader's own row overrides each one."""

    max_order_quantity: int
    max_order_value_inr: Decimal
    max_open_orders: int


class CachedInstruments:
    """Instrument records cached in process for ``ttl_s`` (a band changes once a day).

    A miss is cached too, so an unknown symbol costs one query per ``ttl_s``, not one per order.
    ``ttl_s`` 0 reads through every time.
    """

    def __init__(
        self,
        source: InstrumentRepository,
        *,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._entries: dict[tuple[str, Exchange], tuple[float, Instrument | None]] = {}
        self._lock = threading.Lock()

    def get(self, symbol: str, exchange: Exchange) -> Instrument | None:
        """The record of ``symbol`` on ``exchange`` (``DataUnavailableError`` from the source)."""
        key = (symbol, exchange)
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl_s:
            return entry[1]
        instrument = self._source.get(symbol, exchange)
        with self._lock:
            self._entries[key] = (now, instrument)
        return instrument

    def upsert(self, instrument: Instrument) -> None:
        """Write through to the source and drop this process's copy."""
        self._source.upsert(instrument)
        with self._lock:
            self._entries.pop((instrument.symbol, instrument.exchange), None)

    def upsert_many(self, instruments: Sequence[Instrument]) -> int:
        """Write through to the source and drop this process's copies of them."""
        changed = self._source.upsert_many(instruments)
        with self._lock:
            for instrument in instruments:
                self._entries.pop((instrument.symbol, instrument.exchange), None)
        return changed


class RiskService:
    """Checks every order against the pre-trade rules (``docs/risk.md``).

    Parameters
    ----------
    state
        Kill switches, open orders and limit overrides of a trader (read on every order).
    instruments
        The instrument master (cached briefly: see :class:`CachedInstruments`).
    market
        Server-side quotes, to value market orders.
    calendar
        The trading calendar.
    limits
        Default limits from the settings.
    clock
        Current time (UTC, tz-aware).
    enforce_market_hours
        ``False`` only in local mode and tests (the settings refuse it elsewhere).
    service_name
        The metric's ``service`` dimension.
    """

    def __init__(
        self,
        *,
        state: RiskStateReader,
        instruments: InstrumentRepository,
        market: MarketData,
        calendar: MarketCalendar,
        limits: RiskLimits,
        clock: Callable[[], datetime],
        enforce_market_hours: bool = True,
        service_name: str = "order-router",
    ) -> None:
        self._state = state
        self._instruments = instruments
        self._market = market
        self._calendar = calendar
        self._limits = limits
        self._clock = clock
        self._enforce_market_hours = enforce_market_hours
        self._service_name = service_name

    def check(self, order: OrderRequest) -> None:
        """Pass ``order`` or refuse it.

        Raises
        ------
        RiskRejectedError
            The first rule the order breaks, its field and why.
        DataUnavailableError
            When the risk state cannot be read: the order is not routed unchecked.
        """
        state = self._state.read(order.user_id)
        instrument = self._instruments.get(order.symbol, order.exchange)
        facts = RiskFacts(
            now=self._clock(),
            switches=state.switches,
            instrument=instrument,
            market_price=self._market_price(order) if order.limit_price is None else None,
            open_orders=state.open_orders,
            limits=self._limits_for(state.limits),
        )
        violation = evaluate(
            order, facts, self._calendar, enforce_market_hours=self._enforce_market_hours
        )
        if violation is None:
            return
        emit_metric(
            RISK_REJECTIONS_METRIC,
            1,
            service=self._service_name,
            dimensions={"rule": violation.rule.value},
        )
        raise RiskRejectedError(violation.rule.value, violation.field, violation.message)

    def _market_price(self, order: OrderRequest) -> Decimal | None:
        quote = self._market.quote(order.symbol)
        if quote is None:
            return None
        return market_price_for(order.side, quote.bid, quote.ask, quote.last)

    def _limits_for(self, own: TraderLimitOverrides | None) -> TraderLimits:
        defaults = self._limits
        if own is None:
            return TraderLimits(
                defaults.max_order_quantity, defaults.max_order_value_inr, defaults.max_open_orders
            )
        return TraderLimits(
            max_order_quantity=own.max_order_quantity or defaults.max_order_quantity,
            max_order_value_inr=own.max_order_value_inr or defaults.max_order_value_inr,
            max_open_orders=own.max_open_orders or defaults.max_open_orders,
        )
