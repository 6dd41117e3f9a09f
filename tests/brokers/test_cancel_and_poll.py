"""Cancel before cascade and polling against each broker's simulator (Kite, Upstox, Dhan).

Each placement answers after the 0.2 s timeout although the broker booked the order at once:
what the gateway's cancel finds is what decides how much quantity may go to the next broker.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from local.simulators import Behaviour
from local.simulators._core import SCRIPT_PATH
from shared.adapters.brokers.gateway import ClientGateway
from shared.domain.broker_orders import BrokerErrorKind
from shared.domain.execution import ExecutionStatus
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import LookupOutcome, resolve_timed_out
from tests.brokers.support import BrokerCase
from tests.brokers.test_gateway import CHILD_ID, child

LATE = 1.0


def late(
    case: BrokerCase, behaviour: Behaviour, quantity: int = 10
) -> tuple[ClientGateway, ChildOrder]:
    """A gateway, and a child it placed that timed out while the broker booked it."""
    case.sim.behaviour = behaviour
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    placed = child(case.name, quantity=quantity)
    result = gateway.place(placed, timeout_s=0.2)
    assert result.status is ChildOrderStatus.TIMED_OUT
    return gateway, placed.model_copy(
        update={"status": result.status, "status_reason": result.reason}
    )


def test_an_open_order_is_cancelled_and_all_of_it_is_free(case: BrokerCase) -> None:
    # GIVEN a timed-out child the broker holds open
    gateway, timed_out = late(case, Behaviour(outcome="open", ack_delay_s=LATE))
    # WHEN it is cancelled before cascading
    answer = gateway.cancel_child(timed_out, timeout_s=5.0)
    resolution = resolve_timed_out(timed_out, answer)
    # THEN the broker cancelled it (confirmed by its status), and the whole quantity is free
    [booked] = case.sim.book.orders.values()
    assert booked.status == "CANCELLED"
    assert (answer.outcome, answer.status, answer.filled_quantity) == (
        LookupOutcome.FOUND,
        ChildOrderStatus.CANCELLED,
        0,
    )
    assert resolution.free_quantity == 10
    assert resolution.child.broker_order_id == booked.order_id
    assert [r.status for r in resolution.reports] == [ExecutionStatus.CANCELLED]


def test_a_partial_fill_is_cancelled_and_only_its_remainder_is_free(case: BrokerCase) -> None:
    # GIVEN a timed-out child the broker filled 4 of 10 of, the rest open
    gateway, timed_out = late(
        case, Behaviour(outcome="partial", partial_fraction=0.4, ack_delay_s=LATE)
    )
    # WHEN it is cancelled
    resolution = resolve_timed_out(timed_out, gateway.cancel_child(timed_out, timeout_s=5.0))
    # THEN 6 are free, and the report carries the 4 filled
    assert resolution.free_quantity == 6
    [report] = resolution.reports
    assert (report.status, report.filled_quantity, report.child_order_id) == (
        ExecutionStatus.CANCELLED,
        4,
        CHILD_ID,
    )


def test_a_fill_before_the_cancel_frees_nothing_and_sends_no_cancel(case: BrokerCase) -> None:
    # GIVEN a timed-out child the broker filled completely
    gateway, timed_out = late(case, Behaviour(outcome="fill", ack_delay_s=LATE))
    calls = len(case.sim.requests)
    # WHEN it is "cancelled"
    resolution = resolve_timed_out(timed_out, gateway.cancel_child(timed_out, timeout_s=5.0))
    # THEN the fill is found, nothing is free, and no cancel was sent (only the look-up)
    assert resolution.free_quantity == 0
    assert [r.filled_quantity for r in resolution.reports] == [10]
    assert not any(method == "DELETE" for method, *_ in case.sim.requests[calls:])


def test_a_refused_cancel_of_a_working_order_frees_nothing(case: BrokerCase) -> None:
    # GIVEN a timed-out open child whose cancel the broker fails with a server error
    gateway, timed_out = late(case, Behaviour(outcome="open", ack_delay_s=LATE))
    real_cancel = case.client.cancel

    def failing_cancel(*args: object, **kwargs: object) -> str:
        case.sim.fail_next("server")
        return real_cancel(*args, **kwargs)  # type: ignore[arg-type]

    case.client.cancel = failing_cancel  # type: ignore[method-assign]
    # WHEN it is cancelled
    answer = gateway.cancel_child(timed_out, timeout_s=5.0)
    resolution = resolve_timed_out(timed_out, answer)
    # THEN the order is still open at the broker: unconfirmed, the quantity held, with why
    assert (answer.outcome, answer.status) == (LookupOutcome.FOUND, ChildOrderStatus.PLACED)
    assert answer.reason is not None
    assert answer.reason.startswith("cancel refused: SERVER")
    assert resolution.free_quantity == 0
    assert resolution.child.status is ChildOrderStatus.TIMED_OUT
    assert resolution.child.broker_order_id in case.sim.book.orders


def test_a_broker_that_cannot_be_reached_frees_nothing(case: BrokerCase) -> None:
    # GIVEN a timed-out child and a broker failing the look-up
    gateway, timed_out = late(case, Behaviour(outcome="open", ack_delay_s=LATE))
    case.sim.fail_next("network")
    # WHEN it is cancelled
    answer = gateway.cancel_child(timed_out, timeout_s=5.0)
    # THEN nothing can be confirmed, and nothing is free
    assert answer.outcome is LookupOutcome.UNKNOWN
    assert resolve_timed_out(timed_out, answer).free_quantity == 0


def test_a_child_the_broker_never_booked_is_free(case: BrokerCase) -> None:
    # GIVEN a child that never reached the broker
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    never = child(case.name, status=ChildOrderStatus.TIMED_OUT)
    # WHEN it is cancelled
    resolution = resolve_timed_out(never, gateway.cancel_child(never, timeout_s=5.0))
    # THEN the broker holds nothing under its tag: all of it may go elsewhere
    assert resolution.free_quantity == never.quantity
    assert resolution.child.status is ChildOrderStatus.TIMED_OUT


def test_a_poll_reads_the_order_history_as_the_postbacks_would_have_said(
    case: BrokerCase,
) -> None:
    # GIVEN a child the broker part-filled then filled, its broker order id known
    case.sim.behaviour = Behaviour(outcome="partial", partial_fraction=0.4)
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    result = gateway.place(child(case.name, quantity=10), timeout_s=5.0)
    placed = child(case.name, quantity=10, broker_order_id=result.broker_order_id)
    booked = case.sim.book.orders[result.broker_order_id]
    case.sim.book._change(booked, status="COMPLETE", filled=10)
    # WHEN it is polled
    answer = gateway.poll(placed, timeout_s=5.0)
    # THEN every state is a report, oldest first, ending filled
    assert answer.outcome is LookupOutcome.FOUND
    assert [(r.status, r.filled_quantity) for r in answer.reports] == [
        (ExecutionStatus.OPEN, 0),
        (ExecutionStatus.PARTIALLY_FILLED, 4),
        (ExecutionStatus.FILLED, 10),
    ]
    assert {r.child_order_id for r in answer.reports} == {CHILD_ID}


def test_a_poll_without_an_order_id_finds_the_order_by_tag_or_says_why_not(
    case_factory: Callable[..., BrokerCase],
) -> None:
    # GIVEN a Kite child placed (its id never stored), and a child never sent
    case = case_factory("kite")
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    gateway.place(child(case.name), timeout_s=5.0)
    # WHEN both are polled, then the broker fails
    found = gateway.poll(child(case.name), timeout_s=5.0)
    missing = gateway.poll(
        child(case.name, child_order_id="ord-ffffffffffffffffffffffffffffffff-9-9"), timeout_s=5.0
    )
    case.sim.fail_next("server")
    failed = gateway.poll(child(case.name), timeout_s=5.0)
    # THEN the first is its current state, the second is not there, the third is unknown
    assert [r.status for r in found.reports] == [ExecutionStatus.FILLED]
    assert missing.outcome is LookupOutcome.NOT_FOUND
    assert failed.outcome is LookupOutcome.UNKNOWN
    assert failed.reason is not None
    assert failed.reason.startswith(BrokerErrorKind.SERVER.value)


def test_the_control_route_scripts_the_next_orders_and_refuses_anything_else(
    case: BrokerCase,
) -> None:
    # GIVEN a simulator scripted over HTTP (local mode's control: a late, open order)
    url = f"{case.running.server.url}{SCRIPT_PATH}"
    scripted = httpx.post(url, json=[{"outcome": "open", "ack_delay_s": LATE}], timeout=5)
    refused = [
        httpx.post(url, json=body, timeout=5).status_code
        for body in ({"outcome": "open"}, [{"fill_price": 1}], [{"outcome": "explode"}])
    ]
    # WHEN a child is placed with a short timeout
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    result = gateway.place(child(case.name), timeout_s=0.2)
    # THEN the script applied (a timeout, the order open at the broker); bad scripts were 400
    assert scripted.json() == {"scripted": 1}
    assert refused == [400, 400, 400]
    assert result.status is ChildOrderStatus.TIMED_OUT
    [booked] = case.sim.book.orders.values()
    assert booked.status == "OPEN"
