"""Broker formats -> ExecutionReport, and the Kite UPDATE -> COMPLETE delta sequence."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.brokers.webhooks import (
    IST,
    NORMALISERS,
    MalformedPayloadError,
    UnsupportedPayloadError,
    normalise_dhan,
    normalise_generic,
    normalise_kite,
    normalise_upstox,
    parse_json_body,
)
from shared.domain.errors import AuthenticationError, InvalidExecutionReportError
from shared.domain.execution import ExecutionStatus, FillDelta, apply_report
from shared.domain.models import Exchange, Side

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str, **changes: Any) -> dict[str, Any]:
    payload = parse_json_body((SAMPLES / name).read_bytes())
    payload.update(changes)
    return payload


# --------------------------------------------------------------------------------------------
# parse_json_body


def test_json_numbers_with_fractions_become_exact_decimals() -> None:
    # GIVEN a body with a price that binary floats cannot hold exactly
    # WHEN it is parsed
    payload = parse_json_body(b'{"average_price": 470.35, "quantity": 3}')
    # THEN the price is the exact decimal and integers stay integers
    assert payload == {"average_price": Decimal("470.35"), "quantity": 3}


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'{"p": NaN}', b"\xff\xfe", b'{"p": Infinity}']
)
def test_unparseable_bodies_are_malformed(raw: bytes) -> None:
    # GIVEN a body that is not a JSON object of finite numbers
    # WHEN it is parsed
    # THEN MalformedPayloadError names the body
    with pytest.raises(MalformedPayloadError) as caught:
        parse_json_body(raw)
    assert caught.value.field == "body"
    assert caught.value.code == "MALFORMED_PAYLOAD"


# --------------------------------------------------------------------------------------------
# Kite


def test_kite_complete_sample_normalises() -> None:
    # GIVEN Kite's documented COMPLETE postback, tagged with our child id
    payload = sample("kite_complete.json")
    # WHEN normalised
    r = normalise_kite(payload, broker_id="zerodha")
    # THEN every field lands in the report, times read as IST
    assert r.broker_id == "zerodha"
    assert r.broker_order_id == "220303000308932"
    assert r.exchange_order_id == "1000000001482421"
    assert r.child_order_id == "ord-42-c1"
    assert r.status is ExecutionStatus.FILLED
    assert (r.quantity, r.filled_quantity, r.average_price) == (100, 100, Decimal("470.35"))
    assert (r.symbol, r.exchange, r.side) == ("SBIN", Exchange.NSE, Side.BUY)
    # exchange_update_timestamp "2022-03-03 09:24:26" IST = 03:54:26 UTC
    assert r.event_time == datetime(2022, 3, 3, 3, 54, 26, tzinfo=UTC)
    assert r.event_time.utcoffset() == IST.utcoffset(None)
    assert r.idempotency_key == "zerodha:220303000308932:FILLED:100"


def test_kite_update_with_fills_is_a_partial_fill() -> None:
    # GIVEN an UPDATE postback with 40 of 100 filled
    payload = sample("kite_update_partial.json")
    # WHEN normalised
    r = normalise_kite(payload, broker_id="zerodha")
    # THEN it is PARTIALLY_FILLED with the cumulative average
    assert r.status is ExecutionStatus.PARTIALLY_FILLED
    assert (r.filled_quantity, r.average_price) == (40, Decimal("470.1"))


def test_kite_update_without_fills_is_open_and_ignores_the_zero_average() -> None:
    # GIVEN an UPDATE for a modification, nothing filled, average_price 0 as Kite sends it
    payload = sample("kite_update_partial.json", filled_quantity=0, average_price=0)
    # WHEN normalised
    r = normalise_kite(payload, broker_id="zerodha")
    # THEN the order is OPEN with no average price
    assert r.status is ExecutionStatus.OPEN
    assert r.average_price is None


def test_kite_rejection_keeps_the_reason_and_falls_back_to_order_timestamp() -> None:
    # GIVEN a REJECTED postback without exchange timestamps
    payload = sample("kite_rejected.json")
    # WHEN normalised
    r = normalise_kite(payload, broker_id="zerodha")
    # THEN it is REJECTED, with Kite's message, stamped at order_timestamp (IST)
    assert r.status is ExecutionStatus.REJECTED
    assert r.status_message is not None
    assert r.status_message.startswith("RMS:Margin Exceeds")
    assert r.event_time == datetime(2022, 3, 3, 3, 54, 25, tzinfo=UTC)


def test_kite_cancel_after_partial_fill_keeps_the_fills() -> None:
    # GIVEN a CANCEL postback after 40 of 100 filled
    payload = sample("kite_update_partial.json", status="CANCEL", cancelled_quantity=60)
    # WHEN normalised
    r = normalise_kite(payload, broker_id="zerodha")
    # THEN it is CANCELLED with the 40 filled
    assert r.status is ExecutionStatus.CANCELLED
    assert r.filled_quantity == 40


def test_kite_update_then_complete_sequence_gives_correct_deltas() -> None:
    # GIVEN Kite's cumulative postbacks for 100 shares: UPDATE 30 @ 100.00, UPDATE 70 @ 100.20,
    #       a duplicate of the second, COMPLETE 100 @ 100.30, then a late copy of the first
    base = sample("kite_complete.json")
    payloads = [
        dict(base, status="UPDATE", filled_quantity=30, average_price=Decimal("100.00")),
        dict(base, status="UPDATE", filled_quantity=70, average_price=Decimal("100.20")),
        dict(base, status="UPDATE", filled_quantity=70, average_price=Decimal("100.20")),
        dict(base, status="COMPLETE", filled_quantity=100, average_price=Decimal("100.30")),
        dict(base, status="UPDATE", filled_quantity=30, average_price=Decimal("100.00")),
    ]
    # WHEN each is normalised and folded into the child's state
    state = None
    deltas: list[FillDelta] = []
    for payload in payloads:
        transition = apply_report(state, normalise_kite(payload, broker_id="zerodha"))
        state = transition.state
        deltas.append(transition.delta)
    # THEN the deltas are 30 @ 100.00, 40 @ (7014 - 3000)/40 = 100.35,
    #      nothing for the duplicate, 30 @ (10030 - 7014)/30 = 100.5333, nothing for the late copy
    assert deltas == [
        FillDelta(quantity=30, price=Decimal("100.0000")),
        FillDelta(quantity=40, price=Decimal("100.3500")),
        FillDelta(quantity=0),
        FillDelta(quantity=30, price=Decimal("100.5333")),
        FillDelta(quantity=0),
    ]
    # AND the child ends FILLED 100 @ 100.30
    assert state is not None
    assert (state.status, state.filled_quantity, state.average_price) == (
        ExecutionStatus.FILLED,
        100,
        Decimal("100.30"),
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": None}, "quantity"),
        ({"quantity": "lots"}, "quantity"),
        ({"order_id": None}, "order_id"),
        ({"status": "EXPLODED"}, "status"),
        ({"transaction_type": "SHORT"}, "transaction_type"),
        ({"tradingsymbol": "sbin eq!"}, "tradingsymbol"),
        ({"average_price": None}, "average_price"),
        ({"filled_quantity": True}, "filled_quantity"),
        (
            {
                "order_timestamp": "03/03/2022",
                "exchange_update_timestamp": None,
                "exchange_timestamp": None,
            },
            "order_timestamp",
        ),
    ],
)
def test_malformed_kite_postback_names_the_field(changes: dict[str, Any], field: str) -> None:
    # GIVEN a Kite postback with one missing or bad field
    payload = sample("kite_complete.json")
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    # WHEN normalised
    # THEN MalformedPayloadError names Kite's field
    with pytest.raises(MalformedPayloadError) as caught:
        normalise_kite(payload, broker_id="zerodha")
    assert caught.value.field == field


def test_kite_impossible_figures_are_invalid_not_malformed() -> None:
    # GIVEN a well-formed postback claiming 120 filled of 100
    payload = sample("kite_complete.json", filled_quantity=120)
    # WHEN normalised
    # THEN it is an impossible execution report naming filledQuantity
    with pytest.raises(InvalidExecutionReportError) as caught:
        normalise_kite(payload, broker_id="zerodha")
    assert caught.value.field == "filledQuantity"


def test_kite_derivatives_are_unsupported() -> None:
    # GIVEN a postback for an NFO contract
    payload = sample("kite_complete.json", exchange="NFO", tradingsymbol="NIFTY26DECFUT")
    # WHEN normalised
    # THEN it is unsupported (still a MalformedPayloadError for a default 400)
    with pytest.raises(UnsupportedPayloadError) as caught:
        normalise_kite(payload, broker_id="zerodha")
    assert caught.value.field == "exchange"
    assert isinstance(caught.value, MalformedPayloadError)


# --------------------------------------------------------------------------------------------
# Upstox


def test_upstox_open_with_fills_is_a_partial_fill() -> None:
    # GIVEN Upstox's "open" update with 31 of 41 filled (Upstox keeps "open" while partial)
    payload = sample("upstox_open_partial.json")
    # WHEN normalised
    r = normalise_upstox(payload, broker_id="upstox")
    # THEN it is PARTIALLY_FILLED, the -EQ series suffix is dropped, tag is our child id
    assert r.status is ExecutionStatus.PARTIALLY_FILLED
    assert (r.quantity, r.filled_quantity, r.average_price) == (41, 31, Decimal("83.45"))
    assert (r.symbol, r.exchange, r.side) == ("NHPC", Exchange.NSE, Side.SELL)
    assert r.child_order_id == "ord-42-c2"
    assert r.event_time == datetime(2024, 2, 21, 9, 10, 3, tzinfo=UTC)


def test_upstox_complete_is_filled() -> None:
    # GIVEN the same order complete
    payload = sample(
        "upstox_open_partial.json", status="complete", filled_quantity=41, pending_quantity=0
    )
    # WHEN normalised
    r = normalise_upstox(payload, broker_id="upstox")
    # THEN it is FILLED
    assert r.status is ExecutionStatus.FILLED


def test_upstox_documented_put_order_update_is_open() -> None:
    # GIVEN Upstox's documented first update: "put order req received", average 0, no exchange
    #       timestamp, no tag
    payload = sample(
        "upstox_open_partial.json",
        status="put order req received",
        filled_quantity=0,
        average_price=0,
        exchange_timestamp=None,
        tag=None,
    )
    # WHEN normalised
    r = normalise_upstox(payload, broker_id="upstox")
    # THEN it is OPEN, stamped at order_timestamp, without child id
    assert r.status is ExecutionStatus.OPEN
    assert r.child_order_id is None
    assert r.event_time == datetime(2024, 2, 21, 9, 10, 2, tzinfo=UTC)


def test_upstox_gtt_update_is_unsupported() -> None:
    # GIVEN a GTT order update
    payload = sample("upstox_open_partial.json", update_type="gtt_order")
    # WHEN normalised
    # THEN it is unsupported, naming update_type
    with pytest.raises(UnsupportedPayloadError) as caught:
        normalise_upstox(payload, broker_id="upstox")
    assert caught.value.field == "update_type"


def test_upstox_missing_order_id_is_malformed() -> None:
    # GIVEN an update without order_id
    payload = sample("upstox_open_partial.json")
    del payload["order_id"]
    # WHEN normalised
    # THEN order_id is named
    with pytest.raises(MalformedPayloadError) as caught:
        normalise_upstox(payload, broker_id="upstox")
    assert caught.value.field == "order_id"


# --------------------------------------------------------------------------------------------
# Dhan


def test_dhan_traded_postback_normalises() -> None:
    # GIVEN a TRADED postback with Dhan's order-book fill fields
    payload = sample("dhan_traded.json")
    # WHEN normalised
    r = normalise_dhan(payload, broker_id="dhan")
    # THEN it is FILLED with correlationId as our child id, stamped at updateTime (IST)
    assert r.status is ExecutionStatus.FILLED
    assert (r.quantity, r.filled_quantity, r.average_price) == (5, 5, Decimal("3890.15"))
    assert (r.symbol, r.exchange, r.side) == ("TCS", Exchange.NSE, Side.BUY)
    assert r.child_order_id == "ord-42-c3"
    assert r.broker_order_id == "112111182198"
    assert r.event_time == datetime(2021, 11, 24, 8, 3, 4, tzinfo=UTC)


def test_dhan_documented_pending_sample_resolves_the_symbol_by_security_id() -> None:
    # GIVEN Dhan's documented PENDING sample, whose tradingSymbol is empty
    payload = sample("dhan_pending.json")
    # WHEN normalised with the instrument map
    r = normalise_dhan(payload, broker_id="dhan", symbols_by_security_id={"11536": "TCS"})
    # THEN it is OPEN on TCS
    assert r.status is ExecutionStatus.OPEN
    assert r.symbol == "TCS"
    assert r.average_price is None


def test_dhan_empty_symbol_without_map_is_malformed() -> None:
    # GIVEN the documented sample and no instrument map
    payload = sample("dhan_pending.json")
    # WHEN normalised
    # THEN tradingSymbol is named
    with pytest.raises(MalformedPayloadError) as caught:
        normalise_dhan(payload, broker_id="dhan")
    assert caught.value.field == "tradingSymbol"


def test_dhan_traded_without_filled_qty_counts_as_fully_filled() -> None:
    # GIVEN a TRADED postback in the documented shape (no filledQty) with an average price
    payload = sample("dhan_traded.json")
    del payload["filledQty"]
    # WHEN normalised
    r = normalise_dhan(payload, broker_id="dhan")
    # THEN the whole quantity is filled
    assert (r.status, r.filled_quantity) == (ExecutionStatus.FILLED, 5)


def test_dhan_traded_without_average_price_is_malformed() -> None:
    # GIVEN a TRADED postback without averageTradedPrice
    payload = sample("dhan_traded.json")
    del payload["averageTradedPrice"]
    # WHEN normalised
    # THEN averageTradedPrice is named (the handler reconciles via the order book)
    with pytest.raises(MalformedPayloadError) as caught:
        normalise_dhan(payload, broker_id="dhan")
    assert caught.value.field == "averageTradedPrice"


def test_dhan_part_traded_and_expired() -> None:
    # GIVEN a PART_TRADED update and an EXPIRED one for 2 of 5 filled
    part = sample("dhan_traded.json", orderStatus="PART_TRADED", filledQty=2)
    expired = sample("dhan_traded.json", orderStatus="EXPIRED", filledQty=2)
    # WHEN normalised
    r_part = normalise_dhan(part, broker_id="dhan")
    r_expired = normalise_dhan(expired, broker_id="dhan")
    # THEN the first is PARTIALLY_FILLED, the second CANCELLED with the expiry kept as reason
    assert r_part.status is ExecutionStatus.PARTIALLY_FILLED
    assert r_expired.status is ExecutionStatus.CANCELLED
    assert r_expired.status_message == "EXPIRED"


def test_dhan_rejection_reason_is_kept() -> None:
    # GIVEN a REJECTED postback with an OMS error
    payload = sample(
        "dhan_pending.json",
        orderStatus="REJECTED",
        tradingSymbol="TCS",
        omsErrorCode="RMS001",
        omsErrorDescription="Insufficient funds",
    )
    # WHEN normalised
    r = normalise_dhan(payload, broker_id="dhan")
    # THEN REJECTED with the description
    assert r.status is ExecutionStatus.REJECTED
    assert r.status_message == "Insufficient funds"


def test_dhan_derivatives_segment_is_unsupported() -> None:
    # GIVEN an NSE_FNO postback
    payload = sample("dhan_traded.json", exchangeSegment="NSE_FNO")
    # WHEN normalised
    # THEN exchangeSegment is named
    with pytest.raises(UnsupportedPayloadError) as caught:
        normalise_dhan(payload, broker_id="dhan")
    assert caught.value.field == "exchangeSegment"


# --------------------------------------------------------------------------------------------
# Generic


def test_generic_report_normalises() -> None:
    # GIVEN our generic JSON for a partial fill
    payload = sample("generic_partial.json")
    # WHEN normalised
    r = normalise_generic(payload, broker_id="paper")
    # THEN every field is taken as is
    assert r.status is ExecutionStatus.PARTIALLY_FILLED
    assert (r.quantity, r.filled_quantity, r.average_price) == (100, 40, Decimal("2501.35"))
    assert r.child_order_id == "ord-42-c4"
    assert r.event_time == datetime(2026, 11, 24, 3, 45, 2, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"brokerOrderId": None}, "brokerOrderId"),
        ({"status": "DONE"}, "status"),
        ({"timestamp": "2026-11-24T09:15:02"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"averagePrice": "abc"}, "averagePrice"),
        ({"side": None}, "side"),
        ({"exchangeOrderId": "x" * 65}, "exchangeOrderId"),
    ],
)
def test_malformed_generic_report_names_the_field(changes: dict[str, Any], field: str) -> None:
    # GIVEN a generic report with one missing or bad field
    payload = sample("generic_partial.json")
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    # WHEN normalised
    # THEN MalformedPayloadError names the camelCase field
    with pytest.raises(MalformedPayloadError) as caught:
        normalise_generic(payload, broker_id="paper")
    assert caught.value.field == field


def test_generic_report_for_another_broker_is_unauthenticated() -> None:
    # GIVEN a report claiming broker "zerodha" signed with the paper broker's secret
    payload = sample("generic_partial.json", brokerId="zerodha")
    # WHEN normalised for the authenticated broker
    # THEN it is refused as an identity mismatch
    with pytest.raises(AuthenticationError):
        normalise_generic(payload, broker_id="paper")


def test_generic_status_must_agree_with_quantities() -> None:
    # GIVEN a report saying FILLED with 40 of 100
    payload = sample("generic_partial.json", status="FILLED")
    # WHEN normalised
    # THEN it is an impossible report naming status
    with pytest.raises(InvalidExecutionReportError) as caught:
        normalise_generic(payload, broker_id="paper")
    assert caught.value.field == "status"


def test_normaliser_table_covers_every_adapter() -> None:
    # GIVEN the adapter names of the brokers table
    # WHEN looked up
    # THEN each has a normaliser and the paper broker speaks the generic format
    assert set(NORMALISERS) == {"kite", "upstox", "dhan", "generic", "paper"}
    assert NORMALISERS["paper"] is normalise_generic
    report = NORMALISERS["generic"](
        json.loads((SAMPLES / "generic_partial.json").read_text()), broker_id="paper"
    )
    assert report.broker_order_id == "P-000123"
