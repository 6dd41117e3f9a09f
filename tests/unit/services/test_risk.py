"""The risk service with in-memory ports: what it reads, what it raises, what it counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.domain.errors import DataUnavailableError, RiskRejectedError
from shared.domain.models import Exchange, OrderType, Quote
from shared.domain.risk import GLOBAL_SCOPE, IST, Instrument, KillSwitch, default_calendar
from shared.ports import TraderLimitOverrides, TraderRiskState
from shared.services.risk import CachedInstruments, RiskLimits, RiskService
from shared.settings import Settings
from tests.factories import order

DAY = date(2026, 12, 1)
OPEN = datetime.combine(DAY, time(10, 0), tzinfo=IST)
RELIANCE = Instrument(
    symbol="RELIANCE",
    exchange=Exchange.NSE,
    tick_size=Decimal("0.05"),
    lot_size=1,
    freeze_quantity=None,
    band_lower=Decimal("1165.90"),
    band_upper=Decimal("1424.90"),
    band_date=DAY,
    updated_at=OPEN,
)
DEFAULTS = RiskLimits(
    max_order_quantity=1_000, max_order_value_inr=Decimal(2_000_000), max_open_orders=5
)


class FakeState:
    def __init__(self) -> None:
        self.states: dict[str, TraderRiskState] = {}
        self.down = False

    def read(self, user_id: str) -> TraderRiskState:
        if self.down:
            raise DataUnavailableError("postgres down")
        return self.states.get(user_id, TraderRiskState(switches=(), open_orders=0, limits=None))


class FakeInstruments:
    def __init__(self, *instruments: Instrument) -> None:
        self.rows = {(i.symbol, i.exchange): i for i in instruments}
        self.reads = 0

    def get(self, symbol: str, exchange: Exchange) -> Instrument | None:
        self.reads += 1
        return self.rows.get((symbol, exchange))

    def upsert(self, instrument: Instrument) -> None:
        self.rows[(instrument.symbol, instrument.exchange)] = instrument

    def upsert_many(self, instruments: Sequence[Instrument]) -> int:
        for instrument in instruments:
            self.upsert(instrument)
        return len(instruments)


class FakeMarket:
    def __init__(self, quote: Quote | None) -> None:
        self._quote = quote

    def quote(self, symbol: str) -> Quote | None:
        return self._quote


def service(
    state: FakeState | None = None,
    instruments: FakeInstruments | None = None,
    *,
    now: datetime = OPEN,
    quote: Quote | None = None,
    enforce_market_hours: bool = True,
) -> RiskService:
    return RiskService(
        state=state or FakeState(),
        instruments=instruments or FakeInstruments(RELIANCE),
        market=FakeMarket(quote),
        calendar=default_calendar(),
        limits=DEFAULTS,
        clock=lambda: now,
        enforce_market_hours=enforce_market_hours,
    )


def metrics(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if '"RiskRejections"' in line]


def test_a_sound_order_passes_and_counts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    service().check(order())
    assert metrics(capsys.readouterr().out) == []


def test_a_refusal_raises_the_rule_and_field_and_counts_it_by_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a limit price one tick above the band
    limit = order(order_type=OrderType.LIMIT, limit_price=Decimal("1424.95"))
    # WHEN checked
    with pytest.raises(RiskRejectedError) as refused:
        service().check(limit)
    # THEN the error names the rule and field, and one metric counts it under that rule
    assert (refused.value.rule, refused.value.field) == ("PRICE_BAND", "limitPrice")
    (metric,) = metrics(capsys.readouterr().out)
    assert metric["rule"] == "PRICE_BAND"
    assert metric["RiskRejections"] == [1.0]


def test_the_injected_clock_decides_the_market_hours() -> None:
    night = datetime.combine(DAY, time(21, 0), tzinfo=IST)
    with pytest.raises(RiskRejectedError) as refused:
        service(now=night).check(order())
    assert refused.value.rule == "MARKET_HOURS"
    service(now=night, enforce_market_hours=False).check(order())


def test_a_traders_own_limits_override_the_defaults_and_unset_ones_keep_them() -> None:
    # GIVEN trader-1 limited to 10 shares (value and open orders left to the defaults)
    state = FakeState()
    state.states["trader-1"] = TraderRiskState(
        switches=(), open_orders=4, limits=TraderLimitOverrides(max_order_quantity=10)
    )
    risk = service(state, quote=Quote(bid=Decimal(1299), ask=Decimal(1300)))
    # WHEN trader-1 sends 11 and trader-2 sends 11
    with pytest.raises(RiskRejectedError) as refused:
        risk.check(order(quantity=11))
    risk.check(order(quantity=11, user_id="trader-2"))
    # THEN only trader-1 is refused; its default open-order cap (5) still allows a fifth
    assert refused.value.rule == "ORDER_QUANTITY"
    risk.check(order(quantity=10))


def test_open_orders_at_the_cap_refuse_the_next_order() -> None:
    state = FakeState()
    state.states["trader-1"] = TraderRiskState(switches=(), open_orders=5, limits=None)
    with pytest.raises(RiskRejectedError) as refused:
        service(state).check(order())
    assert refused.value.rule == "OPEN_ORDERS"


def test_a_market_order_is_valued_at_the_server_quote_not_the_clients() -> None:
    # GIVEN 1,000 shares at a server ask of 2,100 (INR 21 lakh > 20 lakh), the client
    # claiming an ask of 1
    cheap = order(quantity=1_000, quote=Quote(bid=Decimal("0.5"), ask=Decimal(1)))
    risk = service(
        instruments=FakeInstruments(replace(RELIANCE, band_upper=Decimal(2500))),
        quote=Quote(bid=Decimal(2099), ask=Decimal(2100)),
    )
    # THEN the server's price values it and it is refused
    with pytest.raises(RiskRejectedError) as refused:
        risk.check(cheap)
    assert refused.value.rule == "ORDER_VALUE"


def test_an_engaged_kill_switch_refuses_every_order() -> None:
    state = FakeState()
    halt = KillSwitch(GLOBAL_SCOPE, True, "exchange outage", "ops", OPEN)
    state.states["trader-1"] = TraderRiskState(switches=(halt,), open_orders=0, limits=None)
    with pytest.raises(RiskRejectedError) as refused:
        service(state).check(order())
    assert refused.value.rule == "KILL_SWITCH"
    assert "exchange outage" in refused.value.message


def test_when_the_risk_state_cannot_be_read_the_order_is_not_routed_unchecked() -> None:
    state = FakeState()
    state.down = True
    with pytest.raises(DataUnavailableError):
        service(state).check(order())


def test_instruments_are_cached_for_their_ttl_misses_included() -> None:
    # GIVEN a cache of 60 s over a source, and a clock we move by hand
    source = FakeInstruments(RELIANCE)
    clock = [0.0]
    cached = CachedInstruments(source, ttl_s=60, monotonic=lambda: clock[0])
    # WHEN a known and an unknown symbol are read twice within the TTL, then after it
    for _ in range(2):
        assert cached.get("RELIANCE", Exchange.NSE) == RELIANCE
        assert cached.get("NOSUCH", Exchange.NSE) is None
    reads_within_ttl = source.reads
    clock[0] = 60.0
    cached.get("RELIANCE", Exchange.NSE)
    # THEN the source is read once per key within the TTL and again after it
    assert reads_within_ttl == 2
    assert source.reads == 3


def test_writing_an_instrument_through_the_cache_is_seen_at_once() -> None:
    source = FakeInstruments(RELIANCE)
    cached = CachedInstruments(source, ttl_s=60)
    cached.get("RELIANCE", Exchange.NSE)
    moved = replace(RELIANCE, band_upper=Decimal(1500))
    cached.upsert(moved)
    assert cached.get("RELIANCE", Exchange.NSE) == moved


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_market_hours_cannot_be_switched_off_outside_local_and_test(stage: str) -> None:
    # GIVEN a deployed stage; WHEN the hours rule is switched off; THEN settings refuse to load
    with pytest.raises(ValidationError, match="enforce_market_hours"):
        Settings(stage=stage, database_url="postgresql://x@h/db", enforce_market_hours=False)
    # AND local and test stages may, explicitly
    assert not Settings(
        stage="local", database_url="postgresql://x@h/db", enforce_market_hours=False
    ).enforce_market_hours


def test_loading_instruments_through_the_cache_drops_the_cached_copies() -> None:
    # GIVEN a cached record
    source = FakeInstruments(RELIANCE)
    cached = CachedInstruments(source, ttl_s=60)
    cached.get("RELIANCE", Exchange.NSE)
    # WHEN the daily load writes a new band through the cache
    moved = replace(RELIANCE, band_lower=Decimal(1200))
    written = cached.upsert_many([moved])
    # THEN the load's count comes back and the next read sees the new band
    assert written == 1
    assert cached.get("RELIANCE", Exchange.NSE) == moved
