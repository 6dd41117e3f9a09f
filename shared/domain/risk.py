"""Pre-trade risk rules: pure functions of an order and the facts they need, no I/O.

Each rule returns ``None`` when the order passes and a :class:`RiskViolation` (rule, field,
message) when it does not. :class:`shared.services.risk.RiskService` gathers the facts through
ports and applies :func:`first_violation`; the rules and their order are documented in
``docs/risk.md``.

The market calendar (``market_calendar.toml`` next to this module) is kept in the repository
rather than taken from ``exchange-calendars``: that library has BSE (XBOM) but no NSE calendar,
stops at the last year its maintainers transcribed, and pulls pandas and numpy (about 105 MB and
seconds of import) into every Lambda cold start; see ``docs/risk.md`` for the measurement.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain.models import Exchange, OrderRequest, OrderType, Side

CALENDAR_FILE = "market_calendar.toml"
IST = ZoneInfo("Asia/Kolkata")
GLOBAL_SCOPE = "GLOBAL"
"""Scope of the kill switch that stops every trader (a trader's own switch is scoped by id)."""


class RiskRule(StrEnum):
    """The pre-trade rules, in the order they are checked (the metric's ``rule`` dimension)."""

    KILL_SWITCH = "KILL_SWITCH"
    MARKET_HOURS = "MARKET_HOURS"
    INSTRUMENT = "INSTRUMENT"
    PRICE_BAND = "PRICE_BAND"
    ORDER_QUANTITY = "ORDER_QUANTITY"
    ORDER_VALUE = "ORDER_VALUE"
    OPEN_ORDERS = "OPEN_ORDERS"


@dataclass(frozen=True)
class RiskViolation:
    """Why an order is refused: the rule, the request field at fault (if one is) and a reason."""

    rule: RiskRule
    field: str | None
    message: str


# -- market calendar -------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """One trading day's hours (IST); ``open``/``close`` ``None`` when not yet published."""

    name: str
    open: time | None
    close: time | None
    pre_open_start: time | None = None
    pre_open_end: time | None = None


@dataclass(frozen=True)
class CalendarYear:
    """One year of the calendar: holidays and special sessions by exchange and date."""

    year: int
    published: bool
    source: str
    holidays: Mapping[tuple[Exchange, date], str]
    special_sessions: Mapping[tuple[Exchange, date], Session]


@dataclass(frozen=True)
class MarketCalendar:
    """The NSE/BSE trading calendar: a regular session and the years it knows."""

    version: str
    regular: Session
    years: Mapping[int, CalendarYear]

    def session_on(self, exchange: Exchange, day: date) -> Session | RiskViolation:
        """The session of ``exchange`` on ``day``, or the violation saying why there is none."""
        year = self.years.get(day.year)
        if year is None or not year.published:
            known = ", ".join(str(y) for y, c in sorted(self.years.items()) if c.published)
            return _closed(
                f"the market calendar (version {self.version}) has no published {exchange.value} "
                f"holidays for {day.year} (published years: {known}); orders are refused until "
                "the calendar is updated"
            )
        special = year.special_sessions.get((exchange, day))
        if special is not None:
            return special
        holiday = year.holidays.get((exchange, day))
        if holiday is not None:
            return _closed(f"{exchange.value} is closed on {day.isoformat()}: {holiday}")
        if day.weekday() >= 5:
            return _closed(f"{exchange.value} is closed on {day.isoformat()} (weekend)")
        return self.regular


def _closed(message: str) -> RiskViolation:
    return RiskViolation(RiskRule.MARKET_HOURS, None, message)


def parse_calendar(document: Mapping[str, Any]) -> MarketCalendar:
    """Build a :class:`MarketCalendar` from the TOML document (as :func:`tomllib.loads` returns).

    Raises
    ------
    ValueError
        When a year is listed twice, a session's hours are half given or out of order, or an
        exchange is unknown.
    """
    regular = _session("regular session", document["regular_session"])
    if regular.open is None or regular.close is None:
        raise ValueError("the regular session needs open and close")
    years: dict[int, CalendarYear] = {}
    for entry in document.get("years", []):
        number = int(entry["year"])
        if number in years:
            raise ValueError(f"year {number} is listed twice")
        holidays: dict[tuple[Exchange, date], str] = {}
        for holiday in entry.get("holidays", []):
            for exchange in _exchanges(holiday):
                holidays[(exchange, _in_year(holiday["date"], number))] = holiday["name"]
        specials: dict[tuple[Exchange, date], Session] = {}
        for special in entry.get("special_sessions", []):
            session = _session(special["name"], special)
            for exchange in _exchanges(special):
                specials[(exchange, _in_year(special["date"], number))] = session
        years[number] = CalendarYear(
            year=number,
            published=bool(entry["published"]),
            source=str(entry.get("source", "")),
            holidays=holidays,
            special_sessions=specials,
        )
    return MarketCalendar(version=str(document["version"]), regular=regular, years=years)


def _session(name: str, entry: Mapping[str, Any]) -> Session:
    session = Session(
        name=name,
        open=entry.get("open"),
        close=entry.get("close"),
        pre_open_start=entry.get("pre_open_start"),
        pre_open_end=entry.get("pre_open_end"),
    )
    if (session.open is None) != (session.close is None):
        raise ValueError(f"{name}: give both open and close, or neither")
    if session.open is not None and session.close is not None and session.open >= session.close:
        raise ValueError(f"{name}: open must be before close")
    return session


def _exchanges(entry: Mapping[str, Any]) -> Iterable[Exchange]:
    return [Exchange(e) for e in entry.get("exchanges", [e.value for e in Exchange])]


def _in_year(day: Any, year: int) -> date:
    if not isinstance(day, date) or day.year != year:
        raise ValueError(f"{day!r} is not a date of {year}")
    return day


def load_calendar(text: str) -> MarketCalendar:
    """Parse a calendar written in the format of ``market_calendar.toml``."""
    return parse_calendar(tomllib.loads(text))


@cache
def default_calendar() -> MarketCalendar:
    """The repository's calendar, read once (lazily, never at import)."""
    text = resources.files("shared.domain").joinpath(CALENDAR_FILE).read_text(encoding="utf-8")
    return load_calendar(text)


def check_market_hours(
    calendar: MarketCalendar, exchange: Exchange, now: datetime
) -> RiskViolation | None:
    """Refuse an order outside the normal market of ``exchange`` at ``now`` (tz-aware).

    The router places at once, so it routes only in the normal market: not in the pre-open
    call auction, where there is no continuous book to route against, and not after the close.
    """
    local = now.astimezone(IST)
    session = calendar.session_on(exchange, local.date())
    if isinstance(session, RiskViolation):
        return session
    if session.open is None or session.close is None:
        return _closed(
            f"the hours of {session.name} on {local.date().isoformat()} are not in the market "
            f"calendar (version {calendar.version}); orders are refused until they are added"
        )
    clock = local.time()
    if session.open <= clock < session.close:
        return None
    hours = f"{session.open:%H:%M}-{session.close:%H:%M} IST"
    if session.pre_open_start is not None and session.pre_open_start <= clock < session.open:
        return _closed(
            f"{exchange.value} is in its pre-open session at {clock:%H:%M:%S} IST; the router "
            f"routes only in the normal market ({hours})"
        )
    return _closed(f"{exchange.value} is closed at {clock:%H:%M:%S} IST (normal market {hours})")


# -- instruments and price bands -------------------------------------------------------------


@dataclass(frozen=True)
class Instrument:
    """An instrument master record: trading rules and the day's price band."""

    symbol: str
    exchange: Exchange
    tick_size: Decimal
    lot_size: int
    freeze_quantity: int | None
    band_lower: Decimal
    band_upper: Decimal
    band_date: date
    updated_at: datetime

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError("tick size and lot size must be positive")
        if not 0 < self.band_lower <= self.band_upper:
            raise ValueError("the price band must satisfy 0 < lower <= upper")


def check_instrument(
    order: OrderRequest, instrument: Instrument | None, trading_day: date
) -> RiskViolation | None:
    """Refuse an order on an instrument without a record, or whose band is not today's."""
    if instrument is None:
        return RiskViolation(
            RiskRule.INSTRUMENT,
            "symbol",
            f"{order.symbol} has no instrument record on {order.exchange.value}; its price band "
            "and limits cannot be checked",
        )
    if instrument.band_date != trading_day:
        return RiskViolation(
            RiskRule.INSTRUMENT,
            "symbol",
            f"the price band of {order.symbol} is dated {instrument.band_date.isoformat()}, "
            f"not today ({trading_day.isoformat()}); the instrument master must be refreshed",
        )
    return None


def check_price_band(order: OrderRequest, instrument: Instrument) -> RiskViolation | None:
    """Refuse a limit or trigger price outside the day's band (bounds included)."""
    for field, price in (("limitPrice", order.limit_price), ("triggerPrice", order.trigger_price)):
        if price is not None and not instrument.band_lower <= price <= instrument.band_upper:
            return RiskViolation(
                RiskRule.PRICE_BAND,
                field,
                f"{field} {price} is outside today's price band of {order.symbol} "
                f"({instrument.band_lower}-{instrument.band_upper})",
            )
    return None


# -- fat-finger limits and open orders -------------------------------------------------------


@dataclass(frozen=True)
class TraderLimits:
    """Per-trader limits (``None`` = no limit of that kind)."""

    max_order_quantity: int | None
    max_order_value_inr: Decimal | None
    max_open_orders: int | None


def reference_price(
    order: OrderRequest, instrument: Instrument, market_price: Decimal | None
) -> Decimal:
    """The price an order is valued at for the value limit.

    A limit order at its limit price; a stop-loss market order at its trigger; a market order
    at the server's quote for its side when there is one (never the client's, which it could
    understate), else at the top of the day's band, the most it can cost.
    """
    if order.limit_price is not None:
        return order.limit_price
    if order.order_type is OrderType.STOP_LOSS_MARKET and order.trigger_price is not None:
        return order.trigger_price
    if market_price is not None:
        return market_price
    return instrument.band_upper


def check_quantity(order: OrderRequest, limits: TraderLimits) -> RiskViolation | None:
    """Refuse an order above the trader's quantity limit (at the limit passes)."""
    cap = limits.max_order_quantity
    if cap is not None and order.quantity > cap:
        return RiskViolation(
            RiskRule.ORDER_QUANTITY,
            "quantity",
            f"quantity {order.quantity} is above your limit of {cap} shares per order",
        )
    return None


def check_value(order: OrderRequest, price: Decimal, limits: TraderLimits) -> RiskViolation | None:
    """Refuse an order whose value (quantity x ``price``) is above the trader's limit."""
    cap = limits.max_order_value_inr
    value = price * order.quantity
    if cap is not None and value > cap:
        return RiskViolation(
            RiskRule.ORDER_VALUE,
            "quantity",
            f"order value INR {value:.2f} ({order.quantity} x {price}) is above your limit of "
            f"INR {cap} per order",
        )
    return None


def check_open_orders(open_orders: int, limits: TraderLimits) -> RiskViolation | None:
    """Refuse a new order when the trader already has the maximum of working orders."""
    cap = limits.max_open_orders
    if cap is not None and open_orders >= cap:
        return RiskViolation(
            RiskRule.OPEN_ORDERS,
            None,
            f"you have {open_orders} open orders, the most allowed is {cap}; wait for fills or "
            "cancel some",
        )
    return None


# -- kill switch -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KillSwitch:
    """The current state of one kill switch (the latest row of its audited history)."""

    scope: str
    engaged: bool
    reason: str
    actor: str
    changed_at: datetime


def check_kill_switches(switches: Iterable[KillSwitch], user_id: str) -> RiskViolation | None:
    """Refuse every order while the global switch, or the trader's own, is engaged."""
    engaged = {s.scope: s for s in switches if s.engaged and s.scope in (GLOBAL_SCOPE, user_id)}
    switch = engaged.get(GLOBAL_SCOPE) or engaged.get(user_id)
    if switch is None:
        return None
    whose = "for every trader" if switch.scope == GLOBAL_SCOPE else "for your account"
    return RiskViolation(
        RiskRule.KILL_SWITCH,
        None,
        f"trading is halted {whose} since {switch.changed_at.isoformat()}: {switch.reason}",
    )


def market_price_for(
    side: Side, bid: Decimal | None, ask: Decimal | None, last: Decimal | None
) -> Decimal | None:
    """The price a market order of ``side`` would pay: the far touch, else the last trade."""
    touch = ask if side is Side.BUY else bid
    return touch if touch is not None else last


# -- all rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskFacts:
    """What the rules need to judge one order, gathered by the risk service."""

    now: datetime
    switches: Sequence[KillSwitch]
    instrument: Instrument | None
    market_price: Decimal | None
    open_orders: int
    limits: TraderLimits


def evaluate(
    order: OrderRequest,
    facts: RiskFacts,
    calendar: MarketCalendar,
    *,
    enforce_market_hours: bool = True,
) -> RiskViolation | None:
    """The first rule ``order`` breaks, in :class:`RiskRule` order, or ``None`` when it passes.

    Parameters
    ----------
    order
        The order, with its trader's id.
    facts
        Kill switches, instrument record, server quote, open orders and limits.
    calendar
        The trading calendar.
    enforce_market_hours
        ``False`` skips the hours rule (local mode and tests only; settings refuse it elsewhere).
    """
    violation = check_kill_switches(facts.switches, order.user_id)
    if violation is None and enforce_market_hours:
        violation = check_market_hours(calendar, order.exchange, facts.now)
    if violation is not None:
        return violation
    instrument = facts.instrument
    violation = check_instrument(order, instrument, facts.now.astimezone(IST).date())
    if violation is not None or instrument is None:
        return violation
    return (
        check_price_band(order, instrument)
        or check_quantity(order, facts.limits)
        or check_value(order, reference_price(order, instrument, facts.market_price), facts.limits)
        or check_open_orders(facts.open_orders, facts.limits)
    )
