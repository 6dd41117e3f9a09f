"""Pre-trade risk through the route_order handler on real Postgres.

Each refused order is answered 422 with its rule, stored nowhere and counted. The hours rule is
on here, with a clock the test moves (docs/risk.md).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from functions.route_order import handler
from shared.domain.models import Exchange
from shared.domain.risk import GLOBAL_SCOPE, IST
from shared.ports import TraderLimitOverrides
from shared.settings import Settings
from shared.wiring import Wiring
from tests.handlers.support import API, OTHER_TRADER, TRADER, call, handler_settings

SMART = f"{API}/orders/smart"
ANALYZE = f"{API}/orders/analyze"
TRADING_DAY = date(2026, 12, 1)  # a Tuesday, no holiday in the calendar
MARKET_BUY = {"symbol": "RELIANCE", "side": "BUY", "quantity": 10, "orderType": "MARKET"}
STORED = ("orders", "order_routing_decisions", "child_orders", "event_outbox")


class Clock:
    """The risk service's clock: a trading-day moment the test sets."""

    def __init__(self) -> None:
        self.now = datetime.combine(TRADING_DAY, time(10, 0), tzinfo=IST)

    def __call__(self) -> datetime:
        return self.now

    def set(self, hh: int, mm: int, ss: int = 0) -> None:
        self.now = datetime.combine(TRADING_DAY, time(hh, mm, ss), tzinfo=IST)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The handlers' settings with the market-hours rule enforced."""
    return handler_settings(settings, enforce_market_hours=True)


@pytest.fixture
def wiring_overrides(clock: Clock) -> dict[str, Any]:
    return {"clock": clock}


def stored(wiring: Wiring) -> dict[str, int]:
    counts = {}
    with wiring.database.connection() as conn:
        for table in STORED:
            row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
            assert row is not None
            counts[table] = int(row["n"])
    return counts


def rejections(out: str) -> list[str]:
    """The ``rule`` of every RiskRejections metric printed (EMF lines on stdout)."""
    found = []
    for line in out.splitlines():
        if '"RiskRejections"' in line:
            found.append(json.loads(line)["rule"])
    return found


def refused(
    response: tuple[int, Any, dict[str, str]], rule: str, field: str | None
) -> dict[str, Any]:
    status, body, _ = response
    assert status == 422, body
    error: dict[str, Any] = body["error"]
    assert (error["code"], error["rule"], error["field"]) == ("RISK_REJECTED", rule, field)
    assert error["message"]
    return error


def test_one_second_before_the_open_is_refused_and_the_open_is_routed(
    wiring: Wiring, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a trading day at 09:14:59 IST
    clock.set(9, 14, 59)
    # WHEN an order and an analysis are sent
    smart = call(handler, "POST", SMART, body=MARKET_BUY)
    analyze = call(handler, "POST", ANALYZE, body=MARKET_BUY)
    # THEN both are refused with the hours rule, nothing is stored, and both are counted
    error = refused(smart, "MARKET_HOURS", None)
    assert "09:15-15:30 IST" in error["message"]
    refused(analyze, "MARKET_HOURS", None)
    assert set(stored(wiring).values()) == {0}
    assert rejections(capsys.readouterr().out) == ["MARKET_HOURS", "MARKET_HOURS"]
    # WHEN the clock reaches 09:15:00
    clock.set(9, 15)
    status, body, _ = call(handler, "POST", SMART, body=MARKET_BUY)
    # THEN the order is routed and stored once
    assert status == 200, body
    assert stored(wiring)["orders"] == 1


def test_a_holiday_is_refused_with_its_name(wiring: Wiring, clock: Clock) -> None:
    clock.now = datetime.combine(date(2026, 12, 25), time(11, 0), tzinfo=IST)
    error = refused(call(handler, "POST", SMART, body=MARKET_BUY), "MARKET_HOURS", None)
    assert "Christmas" in error["message"]
    assert stored(wiring)["orders"] == 0


def test_a_limit_price_one_tick_outside_the_band_is_refused(
    wiring: Wiring, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN RELIANCE's seeded band 1165.90-1424.90
    band = wiring.instruments.get("RELIANCE", Exchange.NSE)
    assert band is not None
    above = str(band.band_upper + Decimal("0.05"))
    # WHEN a limit order one tick above the band, and one at its top, are sent
    outside = call(
        handler, "POST", SMART, body={**MARKET_BUY, "orderType": "LIMIT", "limitPrice": above}
    )
    at_top = call(
        handler,
        "POST",
        SMART,
        body={**MARKET_BUY, "orderType": "LIMIT", "limitPrice": str(band.band_upper)},
    )
    # THEN the first is refused naming limitPrice and counted; the second is routed
    error = refused(outside, "PRICE_BAND", "limitPrice")
    assert above in error["message"]
    assert at_top[0] == 200, at_top[1]
    assert stored(wiring)["orders"] == 1
    assert rejections(capsys.readouterr().out) == ["PRICE_BAND"]


def test_quantity_and_value_over_the_traders_limits_are_refused(wiring: Wiring) -> None:
    # GIVEN trader-1 limited to 50 shares and INR 50,000 an order
    wiring.risk_state.upsert_limits(
        "trader-1",
        TraderLimitOverrides(max_order_quantity=50, max_order_value_inr=Decimal(50_000)),
    )
    limit = {**MARKET_BUY, "orderType": "LIMIT", "limitPrice": "1250.00"}
    # WHEN 51 shares, then 41 shares at 1250 (INR 51,250), then 40 (INR 50,000) are sent
    too_many = call(handler, "POST", SMART, body={**limit, "quantity": 51})
    too_much = call(handler, "POST", SMART, body={**limit, "quantity": 41})
    at_limit = call(handler, "POST", SMART, body={**limit, "quantity": 40})
    other = call(handler, "POST", SMART, body={**limit, "quantity": 51}, claims=OTHER_TRADER)
    # THEN the first two are refused, the order at the limit and trader-2's are routed
    refused(too_many, "ORDER_QUANTITY", "quantity")
    refused(too_much, "ORDER_VALUE", "quantity")
    assert at_limit[0] == 200, at_limit[1]
    assert other[0] == 200, other[1]
    assert stored(wiring)["orders"] == 2


def test_the_open_orders_cap_counts_the_traders_working_orders(wiring: Wiring) -> None:
    # GIVEN trader-1 allowed two open orders (paper children stay PLACED until reports arrive)
    wiring.risk_state.upsert_limits("trader-1", TraderLimitOverrides(max_open_orders=2))
    for n in range(2):
        status, body, _ = call(
            handler, "POST", SMART, body={**MARKET_BUY, "clientOrderId": f"o{n}"}
        )
        assert status == 200, body
    # WHEN a third is sent
    third = call(handler, "POST", SMART, body={**MARKET_BUY, "clientOrderId": "o2"})
    # THEN it is refused; a repeat of an accepted one still gets its original answer
    refused(third, "OPEN_ORDERS", None)
    status, replay, _ = call(handler, "POST", SMART, body={**MARKET_BUY, "clientOrderId": "o0"})
    assert (status, replay["replayed"]) == (200, True)
    assert stored(wiring)["orders"] == 2


def test_kill_switches_global_and_per_trader_take_effect_on_the_next_order(
    wiring: Wiring, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN trader-1's own switch engaged
    wiring.risk_state.set("trader-1", engaged=True, reason="margin call", actor="risk-desk")
    # WHEN both traders send an order
    mine = call(handler, "POST", SMART, body=MARKET_BUY)
    theirs = call(handler, "POST", SMART, body=MARKET_BUY, claims=OTHER_TRADER)
    # THEN only trader-1 is refused, with the reason
    assert "margin call" in refused(mine, "KILL_SWITCH", None)["message"]
    assert theirs[0] == 200, theirs[1]
    # WHEN the global switch is engaged
    wiring.risk_state.set(GLOBAL_SCOPE, engaged=True, reason="exchange outage", actor="ops")
    # THEN trader-2 is refused too, from the very next order
    refused(call(handler, "POST", SMART, body=MARKET_BUY, claims=OTHER_TRADER), "KILL_SWITCH", None)
    # WHEN both switches are released
    wiring.risk_state.set(GLOBAL_SCOPE, engaged=False, reason="resolved", actor="ops")
    wiring.risk_state.set("trader-1", engaged=False, reason="margin paid", actor="risk-desk")
    # THEN trader-1 routes again; the history keeps every change in order
    assert call(handler, "POST", SMART, body=MARKET_BUY, claims=TRADER)[0] == 200
    history = wiring.risk_state.history(GLOBAL_SCOPE)
    assert [(h.engaged, h.reason) for h in history] == [
        (True, "exchange outage"),
        (False, "resolved"),
    ]
    assert stored(wiring)["orders"] == 2
    assert rejections(capsys.readouterr().out) == ["KILL_SWITCH", "KILL_SWITCH"]


def test_an_unknown_instrument_is_refused_naming_symbol(wiring: Wiring) -> None:
    refused(
        call(handler, "POST", SMART, body={**MARKET_BUY, "symbol": "NOSUCH"}),
        "INSTRUMENT",
        "symbol",
    )
    assert set(stored(wiring).values()) == {0}
