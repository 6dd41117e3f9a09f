"""ChildPlacer's cancel before cascade and remainder re-routing, on fakes."""

from __future__ import annotations

import time
from decimal import Decimal

from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import BrokerLookup, LookupOutcome, parent_status
from shared.ports import PlacementResult
from shared.services.placement import ChildPlacer
from tests import factories
from tests.fakes import TIMED_OUT, FakeClock, FakeGateway, FakeRateCounter
from tests.unit.services.test_child_placer import Bench, healthy


def report(child: ChildOrder, status: ExecutionStatus, filled: int) -> ExecutionReport:
    return ExecutionReport(
        broker_id=child.broker_id,
        broker_order_id=f"{child.broker_id}-1",
        child_order_id=child.child_order_id,
        status=status,
        quantity=child.quantity,
        filled_quantity=filled,
        average_price=Decimal("100.5") if filled else None,
        symbol=child.symbol,
        exchange=child.exchange,
        side=child.side,
        event_time=factories.NOW,
    )


class PartialGateway(FakeGateway):
    """zerodha fills ``filled`` of each child and cancels the rest; the others fill."""

    def __init__(self, filled: int) -> None:
        super().__init__()
        self.filled = filled

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        result = super().place(child, timeout_s=timeout_s)
        if child.broker_id != "zerodha":
            return result
        reports = (
            report(child, ExecutionStatus.PARTIALLY_FILLED, self.filled),
            report(child, ExecutionStatus.CANCELLED, self.filled),
        )
        return PlacementResult(
            child_order_id=child.child_order_id,
            status=ChildOrderStatus.PLACED,
            broker_order_id=result.broker_order_id,
            response_time_ms=5.0,
            reports=reports,
        )


def cancelled_with(filled: int) -> BrokerLookup:
    return BrokerLookup(
        outcome=LookupOutcome.FOUND,
        status=ChildOrderStatus.CANCELLED,
        broker_order_id="Z-1",
        filled_quantity=filled,
    )


def test_a_partial_fill_remainder_goes_to_the_next_broker_and_counts_once() -> None:
    # GIVEN zerodha fills 60 of 100 and cancels the rest
    bench = Bench(PartialGateway(filled=60))
    # WHEN the children are placed
    placement = bench.place(healthy())
    # THEN the 40 left went to upstox; zerodha's child stays live for what it filled
    assert [(c.broker_id, c.quantity, c.status) for c in placement.children] == [
        ("zerodha", 100, ChildOrderStatus.PLACED),
        ("upstox", 40, ChildOrderStatus.PLACED),
    ]
    [cascade] = placement.cascades
    assert (cascade.to_broker_id, cascade.quantity) == ("upstox", 40)
    assert placement.rejects == 0
    assert placement.rerouted == {placement.children[0].child_order_id: 40}
    assert parent_status(placement.children, 100, placement.rerouted) == "ROUTED"


def test_a_remainder_no_broker_can_take_stays_counted_with_its_child() -> None:
    # GIVEN zerodha part-fills and its fallbacks are unusable
    bench = Bench(PartialGateway(filled=60))
    profiles = [factories.profile("zerodha")]
    # WHEN the children are placed
    placement = bench.place(profiles)
    # THEN the remainder found no broker, and the order counts the child whole
    [cascade] = placement.cascades
    assert cascade.to_broker_id is None
    assert placement.rerouted == {}
    assert parent_status(placement.children, 100, placement.rerouted) == "ROUTED"


def test_a_timed_out_child_cancelled_at_its_broker_cascades_only_the_unfilled_part() -> None:
    # GIVEN zerodha times out, and its cancel finds 30 filled before it
    gateway = FakeGateway({"zerodha": TIMED_OUT})
    gateway.cancels["zerodha"] = cancelled_with(30)
    bench = Bench(gateway)
    # WHEN the children are placed
    placement = bench.place(healthy())
    # THEN the cancel came first, then 70 went to upstox; zerodha's child keeps its order id
    assert [c.broker_id for c in gateway.cancelled] == ["zerodha"]
    first, cascaded = placement.children
    assert (first.status, first.broker_order_id) == (ChildOrderStatus.PLACED, "Z-1")
    assert first.status_reason is not None
    assert "cancelled at the broker with 30 filled" in first.status_reason
    assert (cascaded.broker_id, cascaded.quantity) == ("upstox", 70)
    # AND the timeout is still learned as a timeout
    [observed] = [o for o in placement.observed if o.broker_id == "zerodha"]
    assert observed.observation.is_error is True


def test_an_unconfirmed_cancel_holds_the_quantity() -> None:
    # GIVEN zerodha times out and its cancel cannot be confirmed
    gateway = FakeGateway({"zerodha": TIMED_OUT})
    gateway.cancels["zerodha"] = BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="SERVER: 503")
    bench = Bench(gateway)
    # WHEN the children are placed
    placement = bench.place(healthy())
    # THEN nothing was sent elsewhere; the child is TIMED_OUT with the reason
    [child] = placement.children
    assert child.status is ChildOrderStatus.TIMED_OUT
    assert child.status_reason is not None
    assert "cancel unconfirmed (SERVER: 503)" in child.status_reason
    [cascade] = placement.cascades
    assert (cascade.to_broker_id, cascade.quantity) == (None, 100)
    assert placement.rejects == 1
    assert parent_status(placement.children, 100, placement.rerouted) == "REJECTED"


class NoCancelGateway:
    """A gateway that times out and cannot cancel."""

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        return PlacementResult(
            child_order_id=child.child_order_id, status=ChildOrderStatus.TIMED_OUT, reason="late"
        )


class HungCancelGateway(FakeGateway):
    def cancel_child(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        time.sleep(1.0)  # past the placer's deadline of 2 x 0.1 s + 0.5 s
        return cancelled_with(0)


def test_a_gateway_that_cannot_cancel_or_hangs_holds_the_quantity() -> None:
    # GIVEN one gateway without a cancel and one whose cancel hangs
    for gateway in (NoCancelGateway(), HungCancelGateway({"zerodha": TIMED_OUT})):
        bench = Bench(FakeGateway())
        bench.placer = ChildPlacer(
            gateway=gateway,
            rate_counter=FakeRateCounter(),
            clock=FakeClock(factories.NOW),
            broker_timeout_s=0.1,
            max_profile_age_s=600,
            max_workers=2,
        )
        # WHEN the children are placed
        placement = bench.place(healthy())
        # THEN the timed-out quantity is held, not cascaded
        assert [c.status for c in placement.children] == [ChildOrderStatus.TIMED_OUT]
        assert [c.to_broker_id for c in placement.cascades] == [None]
