"""ChildPlacer's cascade policy on fakes: which broker a failed child's quantity goes to."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.domain.models import BrokerProfile, BrokerStatus, OrderRequest, RoutingDecision
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.services.placement import ChildPlacer, Placement
from shared.services.schemas import SkippedBroker
from tests import factories
from tests.fakes import PLACED, REJECTED, TIMED_OUT, Answer, FakeClock, FakeGateway, FakeRateCounter

MAX_AGE_S = 600


class Bench:
    """One order routed by hand to zerodha, with upstox then dhan as fallbacks."""

    def __init__(self, gateway: FakeGateway, *, timeout_s: float = 0.2) -> None:
        self.clock = FakeClock(factories.NOW)
        self.rates = FakeRateCounter()
        self.gateway = gateway
        self.placer = ChildPlacer(
            gateway=gateway,
            rate_counter=self.rates,
            clock=self.clock,
            broker_timeout_s=timeout_s,
            max_profile_age_s=MAX_AGE_S,
            max_market_age_s=MAX_AGE_S,
            max_workers=2,
        )
        self.order: OrderRequest = factories.order(quantity=100)
        self.decision: RoutingDecision = factories.decision(
            self.order, {"zerodha": 100}, fallback_broker_ids=("upstox", "dhan")
        )
        self.children: list[ChildOrder] = factories.children(self.order, self.decision)

    def place(
        self, profiles: list[BrokerProfile], recent: dict[str, int] | None = None
    ) -> Placement:
        return self.placer.place(
            self.order,
            self.decision,
            self.children,
            profiles,
            arrival=None,
            recent_orders=recent or {},
        )


def healthy() -> list[BrokerProfile]:
    return [factories.profile(b) for b in ("zerodha", "upstox", "dhan")]


def test_a_rejected_child_cascades_to_the_first_fallback() -> None:
    # GIVEN zerodha rejects
    bench = Bench(FakeGateway({"zerodha": REJECTED}))
    # WHEN the children are placed
    placement = bench.place(healthy())
    # THEN its quantity went to upstox, one attempt later, and the hop is recorded
    assert [(c.broker_id, c.status, c.attempt) for c in placement.children] == [
        ("zerodha", ChildOrderStatus.REJECTED, 1),
        ("upstox", ChildOrderStatus.PLACED, 2),
    ]
    [cascade] = placement.cascades
    assert (cascade.from_broker_id, cascade.to_broker_id, cascade.quantity) == (
        "zerodha",
        "upstox",
        100,
    )
    assert cascade.reason == "RMS: margin exceeds limit"
    assert cascade.skipped == ()
    assert placement.children[1].cascaded_from == "zerodha"
    assert placement.rejects == 1


@pytest.mark.parametrize(
    ("upstox", "recent", "reason"),
    [
        ({"status": BrokerStatus.OFFLINE}, {}, "broker is OFFLINE"),
        ({"status": BrokerStatus.ERROR}, {}, "broker is ERROR"),
        ({"rate_limit_per_s": 5}, {"upstox": 5}, "rate limit exhausted: 5 of 5"),
    ],
)
def test_a_fallback_eligibility_excludes_is_skipped_and_the_reason_recorded(
    upstox: dict[str, Any], recent: dict[str, int], reason: str
) -> None:
    # GIVEN zerodha rejects and the first fallback, upstox, is offline, in error or rate-limited
    bench = Bench(FakeGateway({"zerodha": REJECTED}))
    profiles = healthy()
    profiles[1] = factories.profile("upstox", **upstox)
    # WHEN the children are placed
    placement = bench.place(profiles, recent)
    # THEN upstox is never asked, dhan takes the quantity, and the cascade says why
    assert [c.broker_id for c in bench.gateway.placed] == ["zerodha", "dhan"]
    [cascade] = placement.cascades
    assert cascade.to_broker_id == "dhan"
    [skipped] = cascade.skipped
    assert skipped.broker_id == "upstox"
    assert reason in skipped.reason


def test_a_fallback_that_went_stale_while_the_first_broker_answered_is_skipped() -> None:
    # GIVEN upstox's profile is just fresh at the decision, and zerodha takes 5 s to reject
    bench = Bench(FakeGateway())
    bench.gateway.script["zerodha"] = Answer(
        ChildOrderStatus.REJECTED, reason="rejected late", before=lambda: bench.clock.advance(5)
    )
    profiles = healthy()
    profiles[1] = factories.profile(
        "upstox", market_updated_at=factories.NOW - timedelta(seconds=MAX_AGE_S - 1)
    )
    # WHEN the children are placed
    placement = bench.place(profiles)
    # THEN upstox is stale at the cascade and skipped; dhan takes the quantity
    [cascade] = placement.cascades
    assert cascade.to_broker_id == "dhan"
    assert cascade.skipped[0].broker_id == "upstox"
    assert cascade.skipped[0].reason.startswith("STALE_MARKET_DATA")


def test_this_order_own_cascades_count_against_a_fallback_rate_limit() -> None:
    # GIVEN zerodha's freeze quantity slices the order in two, both rejected, and upstox may
    # take one order a second
    bench = Bench(FakeGateway({"zerodha": REJECTED}))
    bench.children = [
        child.model_copy(update={"child_order_id": f"{child.order_id}-1-{n}", "quantity": 50})
        for child in bench.children
        for n in (1, 2)
    ]
    profiles = healthy()
    profiles[1] = factories.profile("upstox", rate_limit_per_s=1)
    # WHEN the children are placed
    placement = bench.place(profiles)
    # THEN the first slice cascades to upstox and the second, its limit used, to dhan
    assert [(c.from_broker_id, c.to_broker_id) for c in placement.cascades] == [
        ("zerodha", "upstox"),
        ("zerodha", "dhan"),
    ]
    assert placement.cascades[1].skipped == (
        SkippedBroker(
            broker_id="upstox", reason="rate limit exhausted: 1 of 1 orders in the last second"
        ),
    )
    assert sorted(c.broker_id for c in bench.gateway.placed) == [
        "dhan",
        "upstox",
        "zerodha",
        "zerodha",
    ]


def test_a_cascaded_quantity_is_sliced_at_the_target_freeze_quantity() -> None:
    # GIVEN zerodha rejects and upstox accepts at most 40 shares an order
    bench = Bench(FakeGateway({"zerodha": REJECTED}))
    profiles = healthy()
    profiles[1] = factories.profile("upstox", freeze_quantity=40)
    # WHEN the children are placed
    placement = bench.place(profiles)
    # THEN upstox gets the 100 shares in three slices, numbered as cascades
    cascaded = [c for c in placement.children if c.cascaded_from == "zerodha"]
    assert [c.quantity for c in cascaded] == [34, 33, 33]
    assert [c.child_order_id for c in cascaded] == [
        f"{bench.order.order_id}-c{n}" for n in (1, 2, 3)
    ]


def test_every_failure_is_recorded_until_no_broker_is_left() -> None:
    # GIVEN every broker rejects or times out
    bench = Bench(FakeGateway({"zerodha": REJECTED, "upstox": TIMED_OUT, "dhan": REJECTED}))
    # WHEN the children are placed
    placement = bench.place(healthy())
    # THEN each failure has its cascade, the last one to nobody
    assert [(c.from_broker_id, c.to_broker_id, c.reason) for c in placement.cascades] == [
        ("zerodha", "upstox", "RMS: margin exceeds limit"),
        ("upstox", "dhan", "no answer within 2000 ms"),
        ("dhan", None, "RMS: margin exceeds limit"),
    ]
    assert placement.rejects == 3
    # AND every answer was an error sample of its broker
    assert [(o.broker_id, o.observation.is_error) for o in placement.observed] == [
        ("zerodha", True),
        ("upstox", True),
        ("dhan", True),
    ]


def test_a_hung_adapter_times_out_at_the_deadline_and_cascades() -> None:
    # GIVEN zerodha's adapter hangs far past the per-broker timeout
    bench = Bench(FakeGateway({"zerodha": Answer(hang_s=2.0), "upstox": PLACED}), timeout_s=0.05)
    # WHEN the children are placed
    placement = bench.place(healthy())
    # THEN the child is TIMED_OUT by the placer itself, and its quantity cascaded
    assert placement.children[0].status is ChildOrderStatus.TIMED_OUT
    assert placement.children[0].status_reason == "broker adapter did not answer in time"
    assert placement.cascades[0].to_broker_id == "upstox"
    # AND every child sent was counted against its broker's rate limit
    assert bench.rates.counts == {"zerodha": 1, "upstox": 1}
