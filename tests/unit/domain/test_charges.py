"""Indian charges: contract notes computed by hand, dated rates, per-order brokerage caps."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.domain.charges import (
    ContractNote,
    compute_charges,
    load_rates,
    parse_rates,
    rates_on,
)
from shared.domain.models import (
    BrokerageRule,
    Exchange,
    FeeSchedule,
    Product,
    Side,
)

ZERODHA = FeeSchedule(
    delivery=BrokerageRule(),
    intraday=BrokerageRule(rate_pct=Decimal("0.03"), cap_inr=Decimal(20)),
    dp_charge_inr=Decimal("15.34"),
)


def test_delivery_buy_matches_a_contract_note_computed_by_hand() -> None:
    # GIVEN 100 RELIANCE bought for delivery at 2,500.00 on NSE at a zero-brokerage broker
    # turnover 2,50,000: STT 0.1 % = 250; NSE 0.00297 % = 7.425 -> 7.43; SEBI 10/crore = 0.25;
    # stamp 0.015 % = 37.50 -> 38 (nearest rupee); GST 18 % x (0 + 7.43 + 0.25) = 1.3824 -> 1.38
    # WHEN
    charges = compute_charges(
        side=Side.BUY,
        product=Product.CNC,
        quantity=100,
        price=Decimal("2500.00"),
        fee_schedule=ZERODHA,
        on=date(2026, 11, 25),
    )
    # THEN
    assert charges == ContractNote(
        brokerage=Decimal("0.00"),
        stt=Decimal("250.00"),
        exchange_txn=Decimal("7.43"),
        sebi=Decimal("0.25"),
        stamp_duty=Decimal("38.00"),
        gst=Decimal("1.38"),
        dp=Decimal(0),
    )
    assert charges.total == Decimal("297.06")


def test_intraday_sell_caps_brokerage_at_20_and_rounds_stt_to_the_rupee() -> None:
    # GIVEN 100 sold intraday at 2,500: brokerage min(20, 0.03 % = 75) = 20; STT 0.025 % = 62.50
    # -> 63; NSE 7.43; SEBI 0.25; no stamp duty on a sell; GST 18 % x 27.68 = 4.9824 -> 4.98
    # WHEN
    charges = compute_charges(
        side=Side.SELL,
        product=Product.MIS,
        quantity=100,
        price=Decimal("2500"),
        fee_schedule=ZERODHA,
    )
    # THEN
    assert (charges.brokerage, charges.stt, charges.stamp_duty, charges.gst) == (
        Decimal("20.00"),
        Decimal("63.00"),
        Decimal("0.00"),
        Decimal("4.98"),
    )
    assert charges.total == Decimal("95.66")


def test_delivery_sell_pays_the_dp_charge_once_and_bse_has_its_own_rate() -> None:
    # GIVEN a delivery sell on BSE of 1,000 at 100 (turnover 1,00,000; BSE 0.00375 % = 3.75)
    # WHEN
    charges = compute_charges(
        side=Side.SELL,
        product=Product.CNC,
        quantity=1_000,
        price=Decimal(100),
        fee_schedule=ZERODHA,
        exchange=Exchange.BSE,
        orders=3,
    )
    # THEN
    assert charges.exchange_txn == Decimal("3.75")
    assert charges.stt == Decimal("100.00")
    assert charges.stamp_duty == Decimal("0.00")
    assert charges.dp == Decimal("15.34")


def test_brokerage_caps_apply_per_child_order() -> None:
    # GIVEN intraday turnover of 10,00,000 sent as 1 order and as 4 slices
    def brokerage(orders: int) -> Decimal:
        return compute_charges(
            side=Side.BUY,
            product=Product.MIS,
            quantity=1_000,
            price=Decimal(1000),
            fee_schedule=ZERODHA,
            orders=orders,
        ).brokerage

    # WHEN / THEN each order pays min(20, 0.03 % of its own turnover)
    assert brokerage(1) == Decimal("20.00")
    assert brokerage(4) == Decimal("80.00")


def test_rates_are_dated_and_the_set_in_force_is_picked() -> None:
    # GIVEN the shipped rates and a document with an older set
    shipped = load_rates()
    older = {
        "rate_set": [
            {
                "effective_from": date(2024, 10, 1),
                "gst_pct": 18,
                "sebi_fee_inr_per_crore": 10,
                "exchange_txn_pct": {"NSE": Decimal("0.00297"), "BSE": Decimal("0.00375")},
                "stt_pct": {"CNC_BUY": 1, "CNC_SELL": 1, "MIS_BUY": 0, "MIS_SELL": 1},
                "stamp_duty_pct": {"CNC_BUY": 1, "CNC_SELL": 0, "MIS_BUY": 1, "MIS_SELL": 0},
            },
            {
                "effective_from": date(2020, 7, 1),
                "gst_pct": 18,
                "sebi_fee_inr_per_crore": 10,
                "exchange_txn_pct": {"NSE": Decimal("0.00345"), "BSE": Decimal("0.00375")},
                "stt_pct": {"CNC_BUY": 1, "CNC_SELL": 1, "MIS_BUY": 0, "MIS_SELL": 1},
                "stamp_duty_pct": {"CNC_BUY": 1, "CNC_SELL": 0, "MIS_BUY": 1, "MIS_SELL": 0},
            },
        ]
    }
    # WHEN
    parsed = parse_rates(older)
    # THEN
    assert shipped[-1].effective_from == date(2024, 10, 1)
    assert shipped[-1].exchange_txn_pct[Exchange.NSE] == Decimal("0.00297")
    assert [s.effective_from for s in parsed] == [date(2020, 7, 1), date(2024, 10, 1)]
    assert rates_on(date(2024, 10, 1)).effective_from == date(2024, 10, 1)
    with pytest.raises(LookupError):
        rates_on(date(2024, 9, 30))


def test_invalid_quantity_is_rejected() -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="positive"):
        compute_charges(
            side=Side.BUY,
            product=Product.CNC,
            quantity=0,
            price=Decimal(1),
            fee_schedule=ZERODHA,
        )
