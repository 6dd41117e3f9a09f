"""Pre-trade risk rules, each at its edges (pure: no I/O, the clock is a parameter)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from shared.domain.models import Exchange, OrderType, Side
from shared.domain.risk import (
    GLOBAL_SCOPE,
    IST,
    Instrument,
    KillSwitch,
    RiskFacts,
    RiskRule,
    TraderLimits,
    check_instrument,
    check_kill_switches,
    check_market_hours,
    check_open_orders,
    check_price_band,
    check_quantity,
    check_value,
    default_calendar,
    evaluate,
    load_calendar,
    market_price_for,
    reference_price,
)
from tests.factories import order

CALENDAR = default_calendar()
TRADING_DAY = date(2026, 12, 1)  # a Tuesday, no holiday


def ist(day: date, hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss, us), tzinfo=IST)


def instrument(**changes: object) -> Instrument:
    values: dict[str, object] = {
        "symbol": "RELIANCE",
        "exchange": Exchange.NSE,
        "tick_size": Decimal("0.05"),
        "lot_size": 1,
        "freeze_quantity": None,
        "band_lower": Decimal("1165.90"),
        "band_upper": Decimal("1424.90"),
        "band_date": TRADING_DAY,
        "updated_at": ist(TRADING_DAY, 8, 0),
    }
    values.update(changes)
    return Instrument(**values)  # type: ignore[arg-type]


LIMITS = TraderLimits(
    max_order_quantity=1_000, max_order_value_inr=Decimal(1_000_000), max_open_orders=3
)


# -- market hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (ist(TRADING_DAY, 9, 14, 59, 999_999), False),
        (ist(TRADING_DAY, 9, 15), True),
        (ist(TRADING_DAY, 15, 29, 59, 999_999), True),
        (ist(TRADING_DAY, 15, 30), False),
    ],
)
def test_the_normal_market_is_09_15_inclusive_to_15_30_exclusive_ist(
    moment: datetime, open_: bool
) -> None:
    # GIVEN a trading day, WHEN an order arrives at each edge of the session
    violation = check_market_hours(CALENDAR, Exchange.NSE, moment)
    # THEN it passes exactly inside [09:15, 15:30)
    assert (violation is None) is open_
    if violation is not None:
        assert violation.rule is RiskRule.MARKET_HOURS
        assert "09:15-15:30 IST" in violation.message


def test_the_clock_is_read_in_ist_whatever_its_time_zone() -> None:
    # GIVEN 03:45:00 UTC (09:15 IST) and one second before
    opening = datetime(2026, 12, 1, 3, 45, tzinfo=UTC)
    # WHEN checked
    # THEN the first passes and the second is refused
    assert check_market_hours(CALENDAR, Exchange.NSE, opening) is None
    assert check_market_hours(CALENDAR, Exchange.NSE, opening - timedelta(seconds=1)) is not None


def test_pre_open_is_named_and_refused() -> None:
    # GIVEN 09:05 IST, inside the pre-open call auction
    violation = check_market_hours(CALENDAR, Exchange.BSE, ist(TRADING_DAY, 9, 5))
    # THEN the router refuses and says why
    assert violation is not None
    assert "pre-open" in violation.message


def test_a_published_holiday_is_closed_all_day_with_its_name() -> None:
    # GIVEN Christmas 2026 at 11:00, the middle of what would be the session
    violation = check_market_hours(CALENDAR, Exchange.NSE, ist(date(2026, 12, 25), 11, 0))
    # THEN refused, naming the holiday
    assert violation is not None
    assert "Christmas" in violation.message


def test_a_weekend_is_closed() -> None:
    violation = check_market_hours(CALENDAR, Exchange.NSE, ist(date(2026, 12, 5), 11, 0))
    assert violation is not None
    assert "weekend" in violation.message


def test_a_special_session_on_a_sunday_is_open_during_its_hours() -> None:
    # GIVEN Sunday 1 February 2026, the Budget day live session at standard timings
    budget = date(2026, 2, 1)
    # WHEN orders arrive inside and outside it
    # THEN inside passes, outside is refused
    assert check_market_hours(CALENDAR, Exchange.NSE, ist(budget, 10, 0)) is None
    assert check_market_hours(CALENDAR, Exchange.NSE, ist(budget, 15, 30)) is not None


def test_muhurat_trading_on_a_holiday_uses_its_own_hours() -> None:
    # GIVEN Diwali 2025, a holiday with a Muhurat session 13:45-14:45 IST
    diwali = date(2025, 10, 21)
    # WHEN orders arrive in the session, before it and at the regular session's hours
    inside = check_market_hours(CALENDAR, Exchange.NSE, ist(diwali, 14, 0))
    before = check_market_hours(CALENDAR, Exchange.NSE, ist(diwali, 13, 44, 59))
    morning = check_market_hours(CALENDAR, Exchange.NSE, ist(diwali, 10, 0))
    # THEN only the session's hour passes; 13:30-13:45 is its pre-open
    assert inside is None
    assert before is not None
    assert "pre-open" in before.message
    assert morning is not None
    assert "13:45-14:45" in morning.message


def test_a_special_session_whose_hours_are_not_published_is_refused() -> None:
    # GIVEN Muhurat trading of 8 November 2026, hours never added to the calendar
    violation = check_market_hours(CALENDAR, Exchange.NSE, ist(date(2026, 11, 8), 18, 0))
    # THEN refused: the calendar does not guess
    assert violation is not None
    assert "not in the market calendar" in violation.message


def test_a_date_past_the_calendar_fails_closed() -> None:
    # GIVEN 2027 (not published) and 2030 (not in the file at all), on a weekday at 11:00
    for day in (date(2027, 1, 5), date(2030, 1, 8)):
        violation = check_market_hours(CALENDAR, Exchange.NSE, ist(day, 11, 0))
        # THEN refused with the reason, naming the years the calendar has
        assert violation is not None
        assert f"no published NSE holidays for {day.year}" in violation.message
        assert "2026" in violation.message


def test_the_calendar_knows_every_2026_holiday_the_exchanges_published() -> None:
    # GIVEN the 2026 year of the calendar
    year = CALENDAR.years[2026]
    # THEN it holds the sixteen weekday holidays for both exchanges
    nse = sorted(d for (e, d) in year.holidays if e is Exchange.NSE)
    bse = sorted(d for (e, d) in year.holidays if e is Exchange.BSE)
    assert len(nse) == 16
    assert nse == bse
    assert all(d.weekday() < 5 for d in nse)


def test_a_malformed_calendar_is_refused_when_loaded() -> None:
    base = 'version = "x"\n[regular_session]\nopen = 09:15:00\nclose = 15:30:00\n'
    with pytest.raises(ValueError, match="listed twice"):
        load_calendar(base + "[[years]]\nyear = 2026\npublished = true\n" * 2)
    with pytest.raises(ValueError, match="not a date of 2026"):
        load_calendar(
            base + "[[years]]\nyear = 2026\npublished = true\n"
            'holidays = [{ date = 2025-01-01, name = "x" }]\n'
        )
    with pytest.raises(ValueError, match="both open and close"):
        load_calendar(
            base + "[[years]]\nyear = 2026\npublished = true\n"
            'special_sessions = [{ date = 2026-01-01, name = "x", open = 10:00:00 }]\n'
        )


# -- instrument and price band ---------------------------------------------------------------


def test_an_order_without_an_instrument_record_is_refused() -> None:
    violation = check_instrument(order(), None, TRADING_DAY)
    assert violation is not None
    assert (violation.rule, violation.field) == (RiskRule.INSTRUMENT, "symbol")


def test_a_band_of_another_day_is_stale() -> None:
    stale = instrument(band_date=TRADING_DAY - timedelta(days=1))
    violation = check_instrument(order(), stale, TRADING_DAY)
    assert violation is not None
    assert "must be refreshed" in violation.message
    assert check_instrument(order(), instrument(), TRADING_DAY) is None


@pytest.mark.parametrize(
    ("price", "inside"),
    [
        ("1165.90", True),
        ("1165.85", False),  # one tick below the band
        ("1424.90", True),
        ("1424.95", False),  # one tick above the band
    ],
)
def test_a_limit_price_one_tick_outside_the_band_is_refused(price: str, inside: bool) -> None:
    limit = order(order_type=OrderType.LIMIT, limit_price=Decimal(price))
    violation = check_price_band(limit, instrument())
    assert (violation is None) is inside
    if violation is not None:
        assert (violation.rule, violation.field) == (RiskRule.PRICE_BAND, "limitPrice")


def test_a_trigger_price_outside_the_band_names_trigger_price() -> None:
    stop = order(order_type=OrderType.STOP_LOSS_MARKET, trigger_price=Decimal("2000"))
    violation = check_price_band(stop, instrument())
    assert violation is not None
    assert violation.field == "triggerPrice"


def test_a_market_order_has_no_price_to_band() -> None:
    assert check_price_band(order(), instrument()) is None


# -- fat-finger limits -----------------------------------------------------------------------


def test_quantity_at_the_limit_passes_and_one_over_is_refused() -> None:
    assert check_quantity(order(quantity=1_000), LIMITS) is None
    violation = check_quantity(order(quantity=1_001), LIMITS)
    assert violation is not None
    assert (violation.rule, violation.field) == (RiskRule.ORDER_QUANTITY, "quantity")


def test_value_at_the_limit_passes_and_one_paisa_over_is_refused() -> None:
    # GIVEN a limit of INR 10,00,000 and 1,000 shares at 1000.00 (exactly the limit)
    at_limit = order(quantity=1_000, order_type=OrderType.LIMIT, limit_price=Decimal("1000"))
    over = order(quantity=1_000, order_type=OrderType.LIMIT, limit_price=Decimal("1000.01"))
    # THEN the first passes, the second is refused with the value in the reason
    assert check_value(at_limit, at_limit.limit_price, LIMITS) is None  # type: ignore[arg-type]
    violation = check_value(over, over.limit_price, LIMITS)  # type: ignore[arg-type]
    assert violation is not None
    assert violation.rule is RiskRule.ORDER_VALUE
    assert "1000010.00" in violation.message


def test_a_market_order_is_valued_at_the_server_quote_else_the_top_of_the_band() -> None:
    market = order(side=Side.BUY)
    assert reference_price(market, instrument(), Decimal("1300")) == Decimal("1300")
    assert reference_price(market, instrument(), None) == Decimal("1424.90")
    stop = order(order_type=OrderType.STOP_LOSS_MARKET, trigger_price=Decimal("1200"))
    assert reference_price(stop, instrument(), Decimal("1300")) == Decimal("1200")


def test_the_market_price_is_the_far_touch_of_the_side() -> None:
    bid, ask, last = Decimal(99), Decimal(101), Decimal(100)
    assert market_price_for(Side.BUY, bid, ask, last) == ask
    assert market_price_for(Side.SELL, bid, ask, last) == bid
    assert market_price_for(Side.SELL, None, None, last) == last
    assert market_price_for(Side.BUY, None, None, None) is None


def test_the_open_orders_cap_refuses_the_order_that_would_exceed_it() -> None:
    # GIVEN a cap of 3: with 2 open the third passes; with 3 open the fourth is refused
    assert check_open_orders(2, LIMITS) is None
    violation = check_open_orders(3, LIMITS)
    assert violation is not None
    assert violation.rule is RiskRule.OPEN_ORDERS


# -- kill switch -----------------------------------------------------------------------------


def switch(scope: str, engaged: bool = True) -> KillSwitch:
    return KillSwitch(scope, engaged, "desk halt", "risk-officer", ist(TRADING_DAY, 10, 0))


def test_the_global_kill_switch_stops_every_trader() -> None:
    for trader in ("trader-1", "trader-2"):
        violation = check_kill_switches([switch(GLOBAL_SCOPE)], trader)
        assert violation is not None
        assert "for every trader" in violation.message


def test_a_traders_kill_switch_stops_only_that_trader() -> None:
    switches = [switch("trader-1")]
    violation = check_kill_switches(switches, "trader-1")
    assert violation is not None
    assert "for your account" in violation.message
    assert check_kill_switches(switches, "trader-2") is None


def test_a_released_switch_lets_orders_through() -> None:
    assert check_kill_switches([switch(GLOBAL_SCOPE, engaged=False)], "trader-1") is None


# -- all rules in order ----------------------------------------------------------------------


def facts(**changes: object) -> RiskFacts:
    values: dict[str, object] = {
        "now": ist(TRADING_DAY, 10, 0),
        "switches": (),
        "instrument": instrument(),
        "market_price": Decimal("1300"),
        "open_orders": 0,
        "limits": LIMITS,
    }
    values.update(changes)
    return RiskFacts(**values)  # type: ignore[arg-type]


def test_a_sound_order_passes_every_rule() -> None:
    assert evaluate(order(), facts(), CALENDAR) is None


def test_the_kill_switch_is_reported_before_any_other_rule() -> None:
    # GIVEN an order breaking every rule while the global switch is engaged
    bad = order(quantity=5_000)
    everything_wrong = facts(
        switches=(switch(GLOBAL_SCOPE),), now=ist(TRADING_DAY, 20, 0), open_orders=9
    )
    # THEN the kill switch is the reason
    violation = evaluate(bad, everything_wrong, CALENDAR)
    assert violation is not None
    assert violation.rule is RiskRule.KILL_SWITCH


def test_hours_can_be_skipped_only_on_request_and_the_other_rules_still_run() -> None:
    night = facts(now=ist(TRADING_DAY, 23, 0))
    assert evaluate(order(), night, CALENDAR) is not None
    assert evaluate(order(), night, CALENDAR, enforce_market_hours=False) is None
    too_big = evaluate(order(quantity=5_000), night, CALENDAR, enforce_market_hours=False)
    assert too_big is not None
    assert too_big.rule is RiskRule.ORDER_QUANTITY


def test_a_market_order_without_a_quote_is_valued_at_the_top_of_the_band() -> None:
    # GIVEN 750 shares: INR 9.75 lakh at the quote (1300), under the limit of 10 lakh
    assert evaluate(order(quantity=750), facts(), CALENDAR) is None
    # WHEN there is no quote, THEN it is valued at the band's top (1424.90) and refused
    violation = evaluate(order(quantity=750), facts(market_price=None), CALENDAR)
    assert violation is not None
    assert violation.rule is RiskRule.ORDER_VALUE
    assert "1424.90" in violation.message
