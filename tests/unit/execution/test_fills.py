"""Cumulative -> delta fill accounting and order-independent final state."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.errors import InvalidExecutionReportError
from shared.domain.execution import (
    ChildExecutionState,
    ExecutionReport,
    ExecutionStatus,
    FillDelta,
    apply_report,
    fill_delta,
)
from shared.domain.models import Exchange, Side

T0 = datetime(2026, 11, 24, 3, 45, tzinfo=UTC)


def report(
    status: ExecutionStatus, quantity: int, filled: int, avg: Decimal | None
) -> ExecutionReport:
    fields: dict[str, Any] = {
        "broker_id": "zerodha",
        "broker_order_id": "B-1",
        "status": status,
        "quantity": quantity,
        "filled_quantity": filled,
        "average_price": avg,
        "symbol": "SBIN",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "event_time": T0,
    }
    return ExecutionReport(**fields)


def test_first_report_delta_is_the_cumulative_fill() -> None:
    # GIVEN nothing recorded and a report of 30 @ 100.00
    r = report(ExecutionStatus.PARTIALLY_FILLED, 100, 30, Decimal("100.00"))
    # WHEN the delta is taken
    d = fill_delta(0, None, r)
    # THEN it is the whole cumulative fill
    assert d == FillDelta(quantity=30, price=Decimal("100.0000"))


def test_delta_price_conserves_notional() -> None:
    # GIVEN 30 @ 100.00 recorded and a cumulative 70 @ 100.20
    r = report(ExecutionStatus.PARTIALLY_FILLED, 100, 70, Decimal("100.20"))
    # WHEN the delta is taken
    d = fill_delta(30, Decimal("100.00"), r)
    # THEN 40 new shares at (70*100.20 - 30*100.00) / 40 = (7014 - 3000) / 40 = 100.35
    assert d == FillDelta(quantity=40, price=Decimal("100.3500"))


@pytest.mark.parametrize("previous", [70, 100])
def test_stale_or_duplicate_report_adds_nothing(previous: int) -> None:
    # GIVEN more (or as much) already recorded than the report says
    r = report(ExecutionStatus.PARTIALLY_FILLED, 100, 70, Decimal("100.20"))
    # WHEN the delta is taken
    d = fill_delta(previous, Decimal("100.30"), r)
    # THEN nothing is added
    assert d == FillDelta(quantity=0, price=None)


def test_contradictory_average_is_refused() -> None:
    # GIVEN 10 @ 100 recorded and a cumulative 20 @ 50 (the new 10 would be free)
    r = report(ExecutionStatus.PARTIALLY_FILLED, 100, 20, Decimal("50"))
    # WHEN the delta is taken
    # THEN averagePrice is named
    with pytest.raises(InvalidExecutionReportError) as caught:
        fill_delta(10, Decimal("100"), r)
    assert caught.value.field == "averagePrice"


@pytest.mark.parametrize(
    ("previous_qty", "previous_avg", "field"),
    [(-1, None, "previousFilledQuantity"), (10, None, "previousAveragePrice")],
)
def test_impossible_recorded_state_is_refused(
    previous_qty: int, previous_avg: Decimal | None, field: str
) -> None:
    # GIVEN a recorded state that cannot be
    r = report(ExecutionStatus.PARTIALLY_FILLED, 100, 20, Decimal("50"))
    # WHEN the delta is taken
    # THEN the state's field is named
    with pytest.raises(InvalidExecutionReportError) as caught:
        fill_delta(previous_qty, previous_avg, r)
    assert caught.value.field == field


def test_terminal_status_with_same_fills_wins_whatever_arrives_last() -> None:
    # GIVEN a partial 40 and a cancellation at the same 40
    partial = report(ExecutionStatus.PARTIALLY_FILLED, 100, 40, Decimal("10.5"))
    cancelled = report(ExecutionStatus.CANCELLED, 100, 40, Decimal("10.5"))
    # WHEN they are applied in both orders
    a = apply_report(apply_report(None, partial).state, cancelled)
    b_first = apply_report(None, cancelled)
    b = apply_report(b_first.state, partial)
    # THEN both end CANCELLED with 40 filled, the stale partial changes nothing, and the
    #      cancellation adds no shares
    assert (
        a.state
        == b.state
        == ChildExecutionState(
            status=ExecutionStatus.CANCELLED, filled_quantity=40, average_price=Decimal("10.5")
        )
    )
    assert a.advanced is True
    assert a.delta.quantity == 0
    assert b.advanced is False


def test_open_then_duplicate_open_is_not_an_advance() -> None:
    # GIVEN an OPEN report applied twice
    opened = report(ExecutionStatus.OPEN, 100, 0, None)
    first = apply_report(None, opened)
    # WHEN the duplicate is applied
    second = apply_report(first.state, opened)
    # THEN the first advanced, the duplicate did not
    assert first.advanced is True
    assert second.advanced is False
    assert second.state == first.state


# --------------------------------------------------------------------------------------------
# Property: any permutation of a report sequence ends in the same state


@st.composite
def report_sequences(
    draw: st.DrawFn,
) -> tuple[list[ExecutionReport], int, Decimal, ExecutionStatus]:
    fills = draw(
        st.lists(
            st.tuples(st.integers(1, 500), st.integers(1, 1_000_000)),  # qty, price in paise
            min_size=1,
            max_size=8,
        )
    )
    unfilled = draw(st.integers(0, 300))
    quantity = sum(q for q, _ in fills) + unfilled
    reports = [report(ExecutionStatus.OPEN, quantity, 0, None)]
    cumulative, notional = 0, Decimal(0)
    for qty, paise in fills:
        cumulative += qty
        notional += qty * Decimal(paise) / 100
        average = notional / cumulative
        status = (
            ExecutionStatus.FILLED if cumulative == quantity else ExecutionStatus.PARTIALLY_FILLED
        )
        reports.append(report(status, quantity, cumulative, average))
    final_status = ExecutionStatus.FILLED
    if unfilled:
        final_status = ExecutionStatus.CANCELLED
        reports.append(report(ExecutionStatus.CANCELLED, quantity, cumulative, average))
    duplicates = draw(st.lists(st.sampled_from(reports), max_size=4))
    return reports + duplicates, cumulative, notional / cumulative, final_status


@settings(max_examples=300, deadline=None)
@given(data=st.data(), sequence=report_sequences())
def test_any_arrival_order_ends_in_the_same_final_state(
    data: st.DataObject,
    sequence: tuple[list[ExecutionReport], int, Decimal, ExecutionStatus],
) -> None:
    # GIVEN a child's reports (cumulative partials, a terminal one, duplicates) in any order
    reports, filled, average, final_status = sequence
    shuffled = data.draw(st.permutations(reports))
    # WHEN they are folded in that order
    state: ChildExecutionState | None = None
    deltas: list[FillDelta] = []
    for r in shuffled:
        transition = apply_report(state, r)
        state = transition.state
        deltas.append(transition.delta)
    # THEN the final state is the one in-order processing gives: all fills, the true average,
    #      the terminal status
    assert state is not None
    assert state.filled_quantity == filled
    assert state.average_price == average
    assert state.status is final_status
    # AND the recorded deltas add up to the fill, and their notional to the cumulative notional
    #     within the rounding of each delta price to 4 decimals
    assert sum(d.quantity for d in deltas) == filled
    booked = sum((d.quantity * d.price for d in deltas if d.price is not None), Decimal(0))
    assert abs(booked - filled * average) <= Decimal("0.00005") * filled + Decimal("1e-12")
