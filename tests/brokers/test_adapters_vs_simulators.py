"""Each real adapter against its broker's simulator, over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from pydantic import SecretStr

from local.simulators import Behaviour
from local.simulators._core import free_port
from shared.adapters.brokers.dhan import DhanClient
from shared.adapters.brokers.kite import KiteClient
from shared.adapters.brokers.upstox import UpstoxClient
from shared.adapters.brokers.webhooks import (
    normalise_dhan,
    normalise_kite,
    normalise_upstox,
    parse_json_body,
    verify_kite_checksum,
    verify_path_token,
)
from shared.domain.broker_orders import (
    BrokerAccount,
    BrokerCallError,
    BrokerErrorKind,
    BrokerOrderChange,
    BrokerOrderRequest,
    BrokerOrderType,
    BrokerProduct,
)
from shared.domain.errors import AuthenticationError
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import Exchange, Side
from tests.brokers.support import (
    DHAN_PATH_TOKEN,
    KITE_SECRET,
    UPSTOX_PATH_TOKEN,
    BrokerCase,
    Postback,
    Receiver,
)

TIMEOUT_S = 5.0


def order(
    order_type: BrokerOrderType = BrokerOrderType.MARKET,
    *,
    quantity: int = 10,
    product: BrokerProduct = BrokerProduct.CNC,
    price: str | None = None,
    trigger: str | None = None,
    tag: str = "child1",
    symbol: str = "RELIANCE",
) -> BrokerOrderRequest:
    return BrokerOrderRequest(
        tag=tag,
        symbol=symbol,
        exchange=Exchange.NSE,
        side=Side.BUY,
        quantity=quantity,
        order_type=order_type,
        product=product,
        price=Decimal(price) if price else None,
        trigger_price=Decimal(trigger) if trigger else None,
    )


def verified_report(case: BrokerCase, postback: Postback) -> ExecutionReport:
    """Verify a postback with the webhook code the service uses, then normalise it."""
    if case.name == "kite":
        payload = parse_json_body(postback.body)
        verify_kite_checksum(payload, KITE_SECRET)
        return normalise_kite(payload, broker_id="kite")
    token = postback.path.rsplit("/", 1)[-1]
    if case.name == "upstox":
        verify_path_token(token, UPSTOX_PATH_TOKEN)
        return normalise_upstox(parse_json_body(postback.body), broker_id="upstox")
    verify_path_token(token, DHAN_PATH_TOKEN)
    return normalise_dhan(parse_json_body(postback.body), broker_id="dhan")


# -- the happy paths, every order type -----------------------------------------------------------


def test_market_order_fills_and_status_and_history_agree(case: BrokerCase) -> None:
    # GIVEN a broker that fills at 2,450.50
    case.sim.behaviour = Behaviour(outcome="fill", fill_price=Decimal("2450.50"))
    # WHEN a market order is placed and read back
    order_id = case.client.place(case.account, order(), timeout_s=TIMEOUT_S)
    status = case.client.status(case.account, order_id, timeout_s=TIMEOUT_S)
    history = case.client.history(case.account, order_id, timeout_s=TIMEOUT_S)
    # THEN the status is the fill and the history ends with it
    assert status.broker_order_id == order_id
    assert status.status is ExecutionStatus.FILLED
    assert (status.quantity, status.filled_quantity) == (10, 10)
    assert status.average_price == Decimal("2450.50")
    assert status.placed_at is not None
    assert [s.status for s in history] == [ExecutionStatus.OPEN, ExecutionStatus.FILLED]
    assert history[-1].filled_quantity == 10


def test_limit_order_partly_fills_then_is_modified_and_cancelled(case: BrokerCase) -> None:
    # GIVEN a broker that fills 40% of the order and leaves the rest open
    case.sim.behaviour = Behaviour(outcome="partial", partial_fraction=0.4)
    order_id = case.client.place(
        case.account,
        order(BrokerOrderType.LIMIT, price="2450.05", product=BrokerProduct.MIS),
        timeout_s=TIMEOUT_S,
    )
    partial = case.client.status(case.account, order_id, timeout_s=TIMEOUT_S)
    # WHEN the limit is raised, then the rest cancelled
    modified = case.client.modify(
        case.account, order_id, BrokerOrderChange(price=Decimal("2451.00")), timeout_s=TIMEOUT_S
    )
    cancelled = case.client.cancel(case.account, order_id, timeout_s=TIMEOUT_S)
    final = case.client.status(case.account, order_id, timeout_s=TIMEOUT_S)
    # THEN the fills are kept through the modification and the cancellation
    assert partial.status is ExecutionStatus.PARTIALLY_FILLED
    assert partial.filled_quantity == 4
    assert modified == cancelled == order_id
    booked = case.sim.book.orders[order_id]
    assert booked.price == Decimal("2451.00")
    assert booked.order_type == ("LIMIT")
    assert final.status is ExecutionStatus.CANCELLED
    assert final.filled_quantity == 4


@pytest.mark.parametrize(
    ("order_type", "price", "trigger", "labels"),
    [
        (
            BrokerOrderType.SL,
            "2400.00",
            "2405.00",
            {"kite": "SL", "upstox": "SL", "dhan": "STOP_LOSS"},
        ),
        (
            BrokerOrderType.SL_M,
            None,
            "2405.00",
            {"kite": "SL-M", "upstox": "SL-M", "dhan": "STOP_LOSS_MARKET"},
        ),
    ],
)
def test_stop_loss_orders_reach_the_broker_in_its_vocabulary(
    case: BrokerCase,
    order_type: BrokerOrderType,
    price: str | None,
    trigger: str,
    labels: dict[str, str],
) -> None:
    # GIVEN a broker that leaves orders open until triggered
    case.sim.behaviour = Behaviour(outcome="open")
    # WHEN a stop-loss order is placed (NRML product)
    order_id = case.client.place(
        case.account,
        order(order_type, price=price, trigger=trigger, product=BrokerProduct.NRML),
        timeout_s=TIMEOUT_S,
    )
    # THEN the broker books it with its own type label and the trigger price
    booked = case.sim.book.orders[order_id]
    assert booked.order_type == labels[case.name]
    assert booked.trigger_price == Decimal(trigger)
    assert booked.product == {"kite": "NRML", "upstox": "D", "dhan": "MARGIN"}[case.name]
    state = case.client.status(case.account, order_id, timeout_s=TIMEOUT_S)
    assert state.status is ExecutionStatus.OPEN


def test_a_rejection_is_reported_with_the_brokers_reason(case: BrokerCase) -> None:
    # GIVEN a broker whose risk checks refuse the order after accepting it
    case.sim.behaviour = Behaviour(outcome="reject", reject_reason="RMS: margin shortfall")
    # WHEN it is placed
    order_id = case.client.place(case.account, order(), timeout_s=TIMEOUT_S)
    state = case.client.status(case.account, order_id, timeout_s=TIMEOUT_S)
    # THEN the order exists, rejected, with the broker's reason
    assert state.status is ExecutionStatus.REJECTED
    assert state.filled_quantity == 0
    assert state.reason == "RMS: margin shortfall"


# -- error families -----------------------------------------------------------------------------

EXPECTED_KINDS = {
    "token": {
        "kite": BrokerErrorKind.TOKEN,
        "upstox": BrokerErrorKind.TOKEN,
        "dhan": BrokerErrorKind.TOKEN,
    },
    "permission": {
        "kite": BrokerErrorKind.PERMISSION,
        "upstox": BrokerErrorKind.PERMISSION,
        "dhan": BrokerErrorKind.PERMISSION,
    },
    "input": {
        "kite": BrokerErrorKind.INPUT,
        "upstox": BrokerErrorKind.INPUT,
        "dhan": BrokerErrorKind.INPUT,
    },
    "order": {
        "kite": BrokerErrorKind.ORDER,
        "upstox": BrokerErrorKind.ORDER,
        "dhan": BrokerErrorKind.ORDER,
    },
    # Upstox documents no network family: its 503 is a server failure, outcome unknown either way.
    "network": {
        "kite": BrokerErrorKind.NETWORK,
        "upstox": BrokerErrorKind.SERVER,
        "dhan": BrokerErrorKind.NETWORK,
    },
    "server": {
        "kite": BrokerErrorKind.SERVER,
        "upstox": BrokerErrorKind.SERVER,
        "dhan": BrokerErrorKind.SERVER,
    },
    "rate": {
        "kite": BrokerErrorKind.RATE_LIMITED,
        "upstox": BrokerErrorKind.RATE_LIMITED,
        "dhan": BrokerErrorKind.RATE_LIMITED,
    },
    "not_json": {
        "kite": BrokerErrorKind.SERVER,
        "upstox": BrokerErrorKind.SERVER,
        "dhan": BrokerErrorKind.SERVER,
    },
}


@pytest.mark.parametrize("failure", sorted(EXPECTED_KINDS))
def test_every_error_family_is_classified(case: BrokerCase, failure: str) -> None:
    # GIVEN a broker that answers the next call with an error of this family
    case.sim.fail_next(failure)
    # WHEN an order is placed
    with pytest.raises(BrokerCallError) as caught:
        case.client.place(case.account, order(), timeout_s=TIMEOUT_S)
    # THEN the adapter names the family, and nothing was booked
    assert caught.value.kind is EXPECTED_KINDS[failure][case.name]
    assert caught.value.http_status is not None
    assert caught.value.http_status >= 400
    assert caught.value.message
    assert case.sim.book.orders == {}


def test_wrong_credentials_are_a_token_error(case: BrokerCase) -> None:
    # GIVEN an account whose access token expired (the broker no longer knows it)
    stale = case.account.model_copy(update={"access_token": SecretStr("expired")})
    # WHEN it places an order
    with pytest.raises(BrokerCallError) as caught:
        case.client.place(stale, order(), timeout_s=TIMEOUT_S)
    # THEN it is told to log in again
    assert caught.value.kind is BrokerErrorKind.TOKEN
    assert caught.value.http_status in (401, 403)


def test_the_rate_limit_answers_429_which_is_its_own_family(
    case_factory: Callable[..., BrokerCase],
) -> None:
    for name in ("kite", "upstox", "dhan"):
        # GIVEN a broker that takes 2 orders a second
        case = case_factory(name, per_second=2)
        case.sim.behaviour = Behaviour(outcome="open")
        # WHEN a third order comes within the second
        case.client.place(case.account, order(tag="a1"), timeout_s=TIMEOUT_S)
        case.client.place(case.account, order(tag="a2"), timeout_s=TIMEOUT_S)
        with pytest.raises(BrokerCallError) as caught:
            case.client.place(case.account, order(tag="a3"), timeout_s=TIMEOUT_S)
        # THEN it is refused with 429 and only two orders exist
        assert caught.value.kind is BrokerErrorKind.RATE_LIMITED, name
        assert caught.value.http_status == 429
        assert len(case.sim.book.orders) == 2


def test_a_slow_acknowledgement_is_a_timeout_although_the_order_exists(case: BrokerCase) -> None:
    # GIVEN a broker that books the order but answers after 1.5 s
    case.sim.behaviour = Behaviour(outcome="open", ack_delay_s=1.5)
    # WHEN the client waits 0.3 s
    with pytest.raises(BrokerCallError) as caught:
        case.client.place(case.account, order(), timeout_s=0.3)
    # THEN it is a timeout, whose outcome is unknown: the order is live at the broker
    assert caught.value.kind is BrokerErrorKind.TIMEOUT
    assert caught.value.kind.outcome_unknown
    (booked,) = case.sim.book.orders.values()
    assert booked.status == "OPEN"
    # AND it can still be cancelled, which is what must happen before a cascade
    assert case.client.cancel(case.account, booked.order_id, timeout_s=TIMEOUT_S) == booked.order_id
    assert case.sim.book.orders[booked.order_id].status == "CANCELLED"


def test_a_timed_out_placement_is_found_by_its_tag_and_cancelled(case: BrokerCase) -> None:
    # GIVEN a placement that timed out, so no broker order id came back
    case.sim.behaviour = Behaviour(outcome="partial", partial_fraction=0.3, ack_delay_s=1.0)
    with pytest.raises(BrokerCallError):
        case.client.place(case.account, order(tag="lost1"), timeout_s=0.2)
    # WHEN the order is looked up by the tag it was placed under
    found = case.client.find_by_tag(case.account, "lost1", timeout_s=TIMEOUT_S)
    # THEN it is found, partly filled, and can be cancelled before its rest goes elsewhere
    assert found is not None
    assert found.status is ExecutionStatus.PARTIALLY_FILLED
    assert found.filled_quantity == 3
    case.client.cancel(case.account, found.broker_order_id, timeout_s=TIMEOUT_S)
    after = case.client.find_by_tag(case.account, "lost1", timeout_s=TIMEOUT_S)
    assert after is not None
    assert (after.status, after.filled_quantity) == (ExecutionStatus.CANCELLED, 3)
    # AND a tag never used finds nothing
    assert case.client.find_by_tag(case.account, "never1", timeout_s=TIMEOUT_S) is None


def test_no_listener_is_unreachable_and_certainly_not_placed() -> None:
    # GIVEN nothing listening where the broker should be
    port = free_port()
    for client in (
        KiteClient(f"http://127.0.0.1:{port}"),
        UpstoxClient(f"http://127.0.0.1:{port}", instruments={"NSE:RELIANCE": "NSE_EQ|X"}),
        DhanClient(f"http://127.0.0.1:{port}/v2", security_ids={"NSE:RELIANCE": "1"}),
    ):
        account = BrokerAccount(
            account_id="a", api_key="k", client_id="c", access_token=SecretStr("t")
        )
        # WHEN an order is placed
        with pytest.raises(BrokerCallError) as caught:
            client.place(account, order(), timeout_s=1.0)
        # THEN the order was never sent: not an unknown outcome
        assert caught.value.kind is BrokerErrorKind.UNREACHABLE
        assert not caught.value.kind.outcome_unknown


def test_cancelling_a_filled_order_is_refused(case: BrokerCase) -> None:
    # GIVEN a filled order
    case.sim.behaviour = Behaviour(outcome="fill")
    order_id = case.client.place(case.account, order(), timeout_s=TIMEOUT_S)
    # WHEN it is cancelled
    with pytest.raises(BrokerCallError) as caught:
        case.client.cancel(case.account, order_id, timeout_s=TIMEOUT_S)
    # THEN the broker refuses and the fill stands
    assert caught.value.kind in (BrokerErrorKind.INPUT, BrokerErrorKind.ORDER)
    assert (
        case.client.status(case.account, order_id, timeout_s=TIMEOUT_S).status
        is ExecutionStatus.FILLED
    )


def test_an_unknown_order_cannot_be_read(case: BrokerCase) -> None:
    # WHEN an order id the broker never issued is read
    with pytest.raises(BrokerCallError) as caught:
        case.client.status(case.account, "999999999", timeout_s=TIMEOUT_S)
    # THEN it is a client-side error, not an unknown outcome
    assert caught.value.kind in (BrokerErrorKind.INPUT, BrokerErrorKind.NOT_FOUND)
    assert not caught.value.kind.outcome_unknown


@pytest.mark.parametrize("name", ["upstox", "dhan"])
def test_a_symbol_without_an_instrument_mapping_is_refused_before_sending(
    case_factory: Callable[..., BrokerCase], name: str
) -> None:
    # GIVEN a broker that names instruments by key (Kite uses the trading symbol itself)
    case = case_factory(name)
    # WHEN an order for a symbol absent from the instrument map is placed
    with pytest.raises(BrokerCallError) as caught:
        case.client.place(case.account, order(symbol="INFY"), timeout_s=TIMEOUT_S)
    # THEN it is an input error and nothing reached the broker
    assert caught.value.kind is BrokerErrorKind.INPUT
    assert "INFY" in caught.value.message
    assert case.sim.requests == []


# -- postbacks ----------------------------------------------------------------------------------


def test_postbacks_arrive_as_the_broker_sends_them_and_verify(
    case: BrokerCase, receiver: Receiver
) -> None:
    # GIVEN a broker that fills 40% then has the rest cancelled
    case.sim.behaviour = Behaviour(
        outcome="partial", partial_fraction=0.4, fill_price=Decimal("99.5")
    )
    order_id = case.client.place(case.account, order(tag="childpb"), timeout_s=TIMEOUT_S)
    case.client.cancel(case.account, order_id, timeout_s=TIMEOUT_S)
    # WHEN its postbacks arrive
    postbacks = receiver.wait_for(2, prefix=case.postback_prefix)
    # THEN each verifies with the service's webhook code and normalises to the fills
    reports = [verified_report(case, p) for p in postbacks]
    assert [r.status for r in reports] == [
        ExecutionStatus.PARTIALLY_FILLED,
        ExecutionStatus.CANCELLED,
    ]
    assert {r.broker_order_id for r in reports} == {order_id}
    assert [r.filled_quantity for r in reports] == [4, 4]
    assert reports[0].average_price == Decimal("99.5")
    assert reports[0].child_order_id == "childpb"


def test_a_tampered_kite_postback_fails_verification(
    case_factory: Callable[..., BrokerCase], receiver: Receiver
) -> None:
    # GIVEN a Kite postback whose order id was changed in transit
    case = case_factory("kite")
    case.client.place(case.account, order(), timeout_s=TIMEOUT_S)
    (postback,) = receiver.wait_for(1, prefix=case.postback_prefix)
    payload = parse_json_body(postback.body)
    payload["order_id"] = "1" + payload["order_id"]
    # WHEN it is verified
    # THEN the checksum no longer matches
    with pytest.raises(AuthenticationError):
        verify_kite_checksum(payload, KITE_SECRET)
    with pytest.raises(AuthenticationError):
        verify_kite_checksum(parse_json_body(postback.body), "another-secret")


def test_a_withheld_postback_is_recovered_from_the_order_history(
    case: BrokerCase, receiver: Receiver
) -> None:
    # GIVEN a broker that fills the order but never sends its postback
    case.sim.behaviour = Behaviour(outcome="fill", withhold_postback=True)
    order_id = case.client.place(case.account, order(), timeout_s=TIMEOUT_S)
    # WHEN the order is polled instead
    history = case.client.history(case.account, order_id, timeout_s=TIMEOUT_S)
    # THEN no postback came, and the history says what it would have said
    assert receiver.wait_for(1, prefix=case.postback_prefix, timeout_s=0.3) == []
    assert history[-1].status is ExecutionStatus.FILLED
    assert history[-1].filled_quantity == 10


# -- each broker's wire format ------------------------------------------------------------------


def test_kite_requests_carry_its_version_header_token_and_form_body(
    case_factory: Callable[..., BrokerCase],
) -> None:
    case = case_factory("kite")
    case.client.place(
        case.account, order(BrokerOrderType.LIMIT, price="10.05"), timeout_s=TIMEOUT_S
    )
    method, path, headers, body = case.sim.requests[-1]
    assert (method, path) == ("POST", "/orders/regular")
    assert headers["x-kite-version"] == "3"
    assert headers["authorization"] == "token kite-api-key:kite-access-token"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"order_type=LIMIT" in body
    assert b"price=10.05" in body
    assert b"tag=child1" in body


def test_upstox_places_on_v3_with_a_bearer_token_and_json(
    case_factory: Callable[..., BrokerCase],
) -> None:
    case = case_factory("upstox")
    case.client.place(case.account, order(product=BrokerProduct.MIS), timeout_s=TIMEOUT_S)
    method, path, headers, body = case.sim.requests[-1]
    assert (method, path) == ("POST", "/v3/order/place")
    assert headers["authorization"] == "Bearer upstox-access-token"
    assert headers["content-type"] == "application/json"
    assert b'"product":"I"' in body
    assert b'"instrument_token":"NSE_EQ|INE002A01018"' in body
    assert b'"slice":false' in body


def test_dhan_sends_its_access_token_header_and_client_id(
    case_factory: Callable[..., BrokerCase],
) -> None:
    case = case_factory("dhan")
    case.client.place(case.account, order(product=BrokerProduct.MIS), timeout_s=TIMEOUT_S)
    method, path, headers, body = case.sim.requests[-1]
    assert (method, path) == ("POST", "/v2/orders")
    assert headers["access-token"] == "dhan-access-token"
    assert b'"dhanClientId":"1100000001"' in body
    assert b'"productType":"INTRADAY"' in body
    assert b'"securityId":"2885"' in body
    assert b'"exchangeSegment":"NSE_EQ"' in body
