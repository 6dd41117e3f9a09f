"""Indian cash-equity charges, itemised as on a contract note.

Statutory rates (STT, exchange transaction charge, SEBI fee, stamp duty, GST) are dated and kept in
``charges_rates.toml`` next to this module, read once on first use; brokers' own charges
(brokerage, DP) come from each broker's :class:`~shared.domain.models.FeeSchedule`.

Rounding follows contract notes: STT and stamp duty to the nearest rupee, every other item to the
paisa, half up; GST is 18 % of the *rounded* brokerage, exchange charge and SEBI fee, as brokers
print it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

from shared.domain.models import (
    BrokerageRule,
    ChargeBreakdown,
    Exchange,
    FeeSchedule,
    Product,
    Side,
)

RATES_FILE = "charges_rates.toml"
_PAISA = Decimal("0.01")
_RUPEE = Decimal(1)
_HUNDRED = Decimal(100)
_CRORE = Decimal(10_000_000)


class ContractNote(NamedTuple):
    """One broker's charges for one execution, itemised and rounded as on its contract note.

    A tuple rather than a model: the engine prices several notes per decision and sums them
    into one :class:`~shared.domain.models.ChargeBreakdown` (:func:`sum_charges`).
    """

    brokerage: Decimal
    stt: Decimal
    exchange_txn: Decimal
    sebi: Decimal
    stamp_duty: Decimal
    gst: Decimal
    dp: Decimal

    @property
    def total(self) -> Decimal:
        """Sum of every item."""
        return sum(self, Decimal(0))


@dataclass(frozen=True, slots=True)
class StatutoryRates:
    """One dated set of statutory rates (percentages of turnover unless named ``_inr``)."""

    effective_from: date
    gst_pct: Decimal
    sebi_fee_inr_per_crore: Decimal
    exchange_txn_pct: dict[Exchange, Decimal]
    stt_pct: dict[tuple[Product, Side], Decimal]
    stamp_duty_pct: dict[tuple[Product, Side], Decimal]
    round_to_rupee: frozenset[str]

    @property
    def sebi_pct(self) -> Decimal:
        """The SEBI fee as a percentage of turnover (INR 10 a crore is 0.0001 %)."""
        return self.sebi_fee_inr_per_crore / _CRORE * _HUNDRED


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _by_product_side(table: dict[str, Any]) -> dict[tuple[Product, Side], Decimal]:
    return {
        (product, side): _dec(table[f"{product.value}_{side.value}"])
        for product in Product
        for side in Side
    }


def parse_rates(document: dict[str, Any]) -> tuple[StatutoryRates, ...]:
    """Parse the rates file's content into rate sets sorted by ``effective_from``.

    Parameters
    ----------
    document
        The TOML document as :func:`tomllib.loads` returns it (``parse_float=Decimal``).

    Returns
    -------
    tuple[StatutoryRates, ...]
        Oldest first.

    Raises
    ------
    KeyError
        A rate set misses a rate (every product x side and every exchange must be present).
    """
    sets = [
        StatutoryRates(
            effective_from=raw["effective_from"],
            gst_pct=_dec(raw["gst_pct"]),
            sebi_fee_inr_per_crore=_dec(raw["sebi_fee_inr_per_crore"]),
            exchange_txn_pct={ex: _dec(raw["exchange_txn_pct"][ex.value]) for ex in Exchange},
            stt_pct=_by_product_side(raw["stt_pct"]),
            stamp_duty_pct=_by_product_side(raw["stamp_duty_pct"]),
            round_to_rupee=frozenset(raw.get("round_to_rupee", ())),
        )
        for raw in document["rate_set"]
    ]
    return tuple(sorted(sets, key=lambda s: s.effective_from))


@cache
def load_rates() -> tuple[StatutoryRates, ...]:
    """Every dated rate set of ``charges_rates.toml``, read once (lazily, never at import)."""
    text = resources.files("shared.domain").joinpath(RATES_FILE).read_text(encoding="utf-8")
    return parse_rates(tomllib.loads(text, parse_float=Decimal))


@cache
def rates_on(day: date | None = None) -> StatutoryRates:
    """The rate set in force on ``day`` (the latest set when ``day`` is ``None``).

    Raises
    ------
    LookupError
        ``day`` is before the oldest rate set.
    """
    sets = load_rates()
    if day is None:
        return sets[-1]
    in_force = [s for s in sets if s.effective_from <= day]
    if not in_force:
        raise LookupError(f"no statutory rates in force on {day.isoformat()}")
    return in_force[-1]


def _round(amount: Decimal, item: str, rates: StatutoryRates) -> Decimal:
    if item in rates.round_to_rupee:
        return amount.quantize(_RUPEE, rounding=ROUND_HALF_UP).quantize(_PAISA)
    return amount.quantize(_PAISA, rounding=ROUND_HALF_UP)


def brokerage_per_order(rule: BrokerageRule, turnover: Decimal) -> Decimal:
    """Brokerage of one executed order: ``clamp(rate_pct % x turnover, min_inr, cap_inr)``."""
    amount = max(turnover * rule.rate_pct / _HUNDRED, rule.min_inr)
    if rule.cap_inr is not None:
        amount = min(amount, rule.cap_inr)
    return amount


def compute_charges(
    *,
    side: Side,
    product: Product,
    quantity: int,
    price: Decimal,
    fee_schedule: FeeSchedule,
    exchange: Exchange = Exchange.NSE,
    orders: int = 1,
    on: date | None = None,
) -> ContractNote:
    """Charges of executing ``quantity`` at ``price`` at one broker, as its contract note shows.

    Parameters
    ----------
    side, product, exchange
        Select the statutory rates (STT and stamp duty depend on product and side).
    quantity
        Shares executed (> 0).
    price
        Average execution price in INR.
    fee_schedule
        The broker's brokerage rules and DP charge.
    orders
        Executed orders the quantity was sent as (children and freeze-quantity slices): brokerage
        minimums and caps apply per order. The turnover is taken as split evenly across them, as
        :func:`shared.domain.orders.split_into_slices` splits it.
    on
        Trading day, to pick the rates in force; ``None`` means the latest rates.

    Returns
    -------
    ContractNote
        Every item rounded as on a contract note (STT and stamp duty to the rupee, the rest to
        the paisa). The DP charge is levied once (one scrip) on a delivery sell.

    Raises
    ------
    ValueError
        ``quantity`` or ``orders`` is not positive, or ``price`` is not positive.
    """
    if quantity <= 0 or orders <= 0:
        raise ValueError("quantity and orders must be positive")
    if price <= 0:
        raise ValueError("price must be positive")
    rates = rates_on(on)
    turnover = price * quantity
    per_order = brokerage_per_order(fee_schedule.rule_for(product), turnover / orders)
    brokerage = _round(per_order * orders, "brokerage", rates)
    key = (product, side)
    stt = _round(turnover * rates.stt_pct[key] / _HUNDRED, "stt", rates)
    exchange_txn = _round(
        turnover * rates.exchange_txn_pct[exchange] / _HUNDRED, "exchange_txn", rates
    )
    sebi = _round(turnover * rates.sebi_pct / _HUNDRED, "sebi", rates)
    stamp = _round(turnover * rates.stamp_duty_pct[key] / _HUNDRED, "stamp_duty", rates)
    gst = _round((brokerage + exchange_txn + sebi) * rates.gst_pct / _HUNDRED, "gst", rates)
    dp = (
        fee_schedule.dp_charge_inr if (product is Product.CNC and side is Side.SELL) else Decimal(0)
    )
    return ContractNote(brokerage, stt, exchange_txn, sebi, stamp, gst, dp)


def sum_charges(notes: Sequence[ContractNote]) -> ChargeBreakdown:
    """Item-by-item sum of one or more brokers' notes (each already rounded on its own)."""
    columns = (sum(column, Decimal(0)) for column in zip(*notes, strict=True))
    return ChargeBreakdown(**dict(zip(ContractNote._fields, columns, strict=True)))


@dataclass(frozen=True, slots=True)
class LinearCharges:
    """Statutory charges as float rates per INR of turnover, for the optimiser's inner loop.

    ``per_inr`` is STT + exchange + SEBI + stamp duty + GST on exchange and SEBI; ``gst_factor``
    multiplies brokerage (1.18). Rounding is ignored here: it moves a cost by under a rupee.
    """

    per_inr: float
    gst_factor: float


@cache
def linear_charges(
    product: Product, side: Side, exchange: Exchange, on: date | None = None
) -> LinearCharges:
    """Float form of the statutory rates in force, for a product, side and exchange."""
    rates = rates_on(on)
    key = (product, side)
    gst = rates.gst_pct / _HUNDRED
    taxed = rates.exchange_txn_pct[exchange] + rates.sebi_pct
    pct = rates.stt_pct[key] + rates.stamp_duty_pct[key] + taxed * (1 + gst)
    return LinearCharges(per_inr=float(pct / _HUNDRED), gst_factor=float(1 + gst))
