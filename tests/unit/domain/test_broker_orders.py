"""The broker port's value types: tags, requests from children, error families."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.domain.broker_orders import (
    BrokerCallError,
    BrokerErrorKind,
    BrokerOrderRequest,
    BrokerOrderType,
    BrokerProduct,
    broker_tag,
)
from shared.domain.models import Exchange, OrderType, Product, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus


def child(**changes: object) -> ChildOrder:
    fields: dict[str, object] = {
        "child_order_id": "ord-5f0c2a9e8b7d4c3a9f1e2d3c4b5a6978-2-1",
        "order_id": "ord-5f0c2a9e8b7d4c3a9f1e2d3c4b5a6978",
        "user_id": "u1",
        "broker_id": "kite",
        "symbol": "TCS",
        "exchange": Exchange.BSE,
        "side": Side.SELL,
        "quantity": 7,
        "order_type": OrderType.MARKET,
        "product": Product.MIS,
    }
    return ChildOrder.model_validate(fields | changes)


def test_a_short_alphanumeric_child_id_is_its_own_tag() -> None:
    assert broker_tag("abc123", 20) == "abc123"


@pytest.mark.parametrize("length", [20, 25, 40])
def test_a_long_child_id_gets_a_stable_digest_tag_that_fits(length: int) -> None:
    # GIVEN a child id longer than the broker's tag and with dashes
    child_id = "ord-5f0c2a9e8b7d4c3a9f1e2d3c4b5a6978-2-1"
    # WHEN its tag is derived twice, and for a sibling
    tag = broker_tag(child_id, length)
    # THEN it fits, is alphanumeric, repeats, and differs from the sibling's
    assert len(tag) == length
    assert tag.isalnum()
    assert broker_tag(child_id, length) == tag
    assert broker_tag(child_id[:-1] + "2", length) != tag


def test_a_child_becomes_a_broker_request() -> None:
    # GIVEN a stop-loss limit child
    stop = child(
        order_type=OrderType.STOP_LOSS,
        limit_price=Decimal("3500.00"),
        trigger_price=Decimal("3505.00"),
    )
    # WHEN it is turned into a request for a broker with 20-character tags
    request = BrokerOrderRequest.from_child(stop, tag_length=20)
    # THEN the broker's vocabulary and both prices carry over
    assert request.order_type is BrokerOrderType.SL
    assert request.product is BrokerProduct.MIS
    assert (request.price, request.trigger_price) == (Decimal("3500.00"), Decimal("3505.00"))
    assert (request.exchange, request.side, request.quantity) == (Exchange.BSE, Side.SELL, 7)
    assert len(request.tag) == 20


def test_a_market_child_sends_no_price_even_if_it_has_one() -> None:
    request = BrokerOrderRequest.from_child(child(limit_price=Decimal("1.00")), tag_length=20)
    assert request.order_type is BrokerOrderType.MARKET
    assert request.price is None
    assert request.trigger_price is None


@pytest.mark.parametrize(
    ("order_type", "price", "trigger", "missing"),
    [
        (BrokerOrderType.LIMIT, None, None, "price"),
        (BrokerOrderType.SL, Decimal(10), None, "trigger price"),
        (BrokerOrderType.SL_M, None, None, "trigger price"),
    ],
)
def test_a_request_without_the_prices_its_type_needs_is_invalid(
    order_type: BrokerOrderType, price: Decimal | None, trigger: Decimal | None, missing: str
) -> None:
    with pytest.raises(ValidationError, match=missing):
        BrokerOrderRequest(
            tag="t1",
            symbol="TCS",
            exchange=Exchange.NSE,
            side=Side.BUY,
            quantity=1,
            order_type=order_type,
            product=BrokerProduct.CNC,
            price=price,
            trigger_price=trigger,
        )


def test_only_failures_after_which_the_order_may_exist_are_unknown_outcomes() -> None:
    unknown = {k for k in BrokerErrorKind if k.outcome_unknown}
    assert unknown == {BrokerErrorKind.TIMEOUT, BrokerErrorKind.NETWORK, BrokerErrorKind.SERVER}
    for kind in BrokerErrorKind:
        expected = ChildOrderStatus.TIMED_OUT if kind in unknown else ChildOrderStatus.REJECTED
        assert kind.child_status is expected


def test_a_call_error_reason_names_family_code_and_message() -> None:
    error = BrokerCallError(
        BrokerErrorKind.TOKEN, "Incorrect api_key or access_token.", broker_code="TokenException"
    )
    assert error.reason == "TOKEN TokenException: Incorrect api_key or access_token."
    assert BrokerCallError(BrokerErrorKind.TIMEOUT, "no answer").reason == "TIMEOUT: no answer"
