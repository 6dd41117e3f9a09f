"""RoutingService's policies on in-memory fakes: cascade, replay, learning, publishing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.errors import ConflictError
from shared.domain.models import BrokerProfile, BrokerStatus, Quote
from shared.domain.orders import ChildOrderStatus
from shared.services.replay import request_fingerprint
from shared.services.schemas import SmartOrderRequest
from tests import factories
from tests.fakes import REJECTED, TIMED_OUT, Answer, RoutingWorld, routing_world

QUOTE = Quote(bid=Decimal("2949.95"), ask=Decimal("2950.05"))
MAX_AGE_S = 600
TRADER = "trader-1"


def request(**overrides: Any) -> SmartOrderRequest:
    body = {"symbol": "RELIANCE", "side": "BUY", "quantity": 100, "orderType": "MARKET"}
    return SmartOrderRequest.model_validate(body | overrides)


def world(
    profiles: list[BrokerProfile] | None = None,
    max_profile_age_s: int = MAX_AGE_S,
    max_market_age_s: float | None = None,
) -> RoutingWorld:
    profiles = profiles or [factories.profile(b) for b in ("zerodha", "upstox", "dhan")]
    return routing_world(
        profiles,
        now=factories.NOW,
        quotes={"RELIANCE": QUOTE},
        max_profile_age_s=max_profile_age_s,
        max_market_age_s=max_market_age_s,
    )


def ranking(w: RoutingWorld, body: SmartOrderRequest) -> list[str]:
    """The brokers in the decision's order (allocated, then fallbacks), as analyze sees them."""
    plan = w.service.analyze(body.to_order(order_id="probe", user_id=TRADER, client_order_id="p"))
    assert len(plan.allocations) == 1, "these tests route the order to one broker"
    return [plan.allocations[0].broker_id, *plan.fallback_broker_ids]


def test_a_rejected_child_cascades_to_the_next_broker_and_everything_is_told() -> None:
    # GIVEN the broker the engine picks rejects
    w = world()
    first, second, _ = ranking(w, request())
    w.gateway.script[first] = REJECTED
    # WHEN the order is submitted
    outcome = w.service.submit(request(), user_id=TRADER, key="k-1")
    # THEN the next broker took the quantity and the answer shows the hop
    result = outcome.result
    [cascade] = result.cascades
    assert (cascade.from_broker_id, cascade.to_broker_id, cascade.quantity) == (first, second, 100)
    assert [(a.broker_id, a.status, a.cascaded_from) for a in result.allocations] == [
        (first, "REJECTED", None),
        (second, "PLACED", first),
    ]
    assert (outcome.rejects, outcome.cascades) == (1, 1)
    # AND the order, its two children and their events were stored, then published
    saved = w.orders.orders[result.order_id]
    assert sorted(c.status for c in saved.children.values()) == [
        ChildOrderStatus.PLACED,
        ChildOrderStatus.REJECTED,
    ]
    assert [e.detail_type for e in w.bus.events] == [
        "OrderRouted",
        "ChildOrderPlaced",
        "ChildOrderPlaced",
    ]
    assert w.outbox.pending == []


def test_a_timed_out_child_cascades_to_the_next_broker() -> None:
    # GIVEN the engine's broker does not answer in time
    w = world()
    first, second, _ = ranking(w, request())
    w.gateway.script[first] = TIMED_OUT
    # WHEN the order is submitted
    result = w.service.submit(request(), user_id=TRADER, key="k-1").result
    # THEN the quantity went on to the next broker, the timeout named as the reason
    assert [(c.to_broker_id, c.reason) for c in result.cascades] == [
        (second, "no answer within 2000 ms")
    ]
    assert result.allocations[0].status == "TIMED_OUT"


def test_when_every_broker_fails_the_order_is_rejected_with_every_cascade_recorded() -> None:
    # GIVEN every broker rejects
    w = world()
    first, second, third = ranking(w, request())
    w.gateway.script.update(dict.fromkeys((first, second, third), REJECTED))
    # WHEN the order is submitted
    outcome = w.service.submit(request(), user_id=TRADER, key="k-1")
    # THEN it is REJECTED, each hop recorded, the last one to nobody
    assert outcome.result.status == "REJECTED"
    assert [(c.from_broker_id, c.to_broker_id) for c in outcome.result.cascades] == [
        (first, second),
        (second, third),
        (third, None),
    ]
    assert (outcome.rejects, outcome.cascades) == (3, 2)
    # AND the stored answer is that one (a replay returns it)
    stored = w.orders.orders[outcome.result.order_id].response
    assert stored == outcome.result.model_dump(mode="json", by_alias=True)


def test_a_fallback_that_went_stale_during_placement_is_skipped_and_the_reason_returned() -> None:
    # GIVEN market data stale after a minute, upstox's 50 s old; dhan is a clearly worse broker;
    # and zerodha, the engine's pick, takes 11 s to reject
    w = world(
        [
            factories.profile("zerodha", response_time_ms=10.0, error_rate_percentage=0.1),
            factories.profile("upstox", market_updated_at=factories.NOW - timedelta(seconds=50)),
            factories.profile(
                "dhan",
                error_rate_percentage=10.0,
                fill_rate_percentage=10.0,
                response_time_ms=500.0,
            ),
        ],
        max_profile_age_s=60,
        max_market_age_s=60,
    )
    first, second, third = ranking(w, request())
    assert [first, second, third] == ["zerodha", "upstox", "dhan"], "upstox fresh at the decision"
    w.gateway.script[first] = Answer(
        ChildOrderStatus.REJECTED, reason="late reject", before=lambda: w.clock.advance(11)
    )
    # WHEN the order is submitted
    result = w.service.submit(request(), user_id=TRADER, key="k-1").result
    # THEN the stale broker is passed over, with its reason in the answer
    [cascade] = result.model_dump(mode="json", by_alias=True)["cascades"]
    assert cascade["toBrokerId"] == third
    [skipped] = cascade["skipped"]
    assert skipped["brokerId"] == second
    assert skipped["reason"].startswith("STALE_MARKET_DATA")
    assert [c.broker_id for c in w.gateway.placed] == [first, third]


def test_the_same_key_and_body_get_the_stored_answer_without_placing_again() -> None:
    # GIVEN an order submitted once
    w = world()
    first = w.service.submit(request(), user_id=TRADER, key="k-1").result
    placed = len(w.gateway.placed)
    # WHEN the same body is sent again with the same key
    again = w.service.submit(request(), user_id=TRADER, key="k-1")
    # THEN it is the first answer, marked replayed, and nothing new was stored or sent
    assert again.result.replayed is True
    assert again.result.model_copy(update={"replayed": False}) == first
    assert len(w.orders.orders) == 1
    assert len(w.gateway.placed) == placed


def test_a_repeat_gets_the_stored_answer_even_when_no_broker_could_take_it_now() -> None:
    # GIVEN an order submitted once, after which every broker went offline
    w = world()
    first = w.service.submit(request(), user_id=TRADER, key="k-1").result
    for key, profile in list(w.profiles.profiles.items()):
        w.profiles.profiles[key] = profile.model_copy(update={"status": BrokerStatus.OFFLINE})
    w.profiles.cached.clear()
    # WHEN the same key and body are sent again
    again = w.service.submit(request(), user_id=TRADER, key="k-1").result
    # THEN the original answer comes back rather than a refusal
    assert again.order_id == first.order_id
    assert again.replayed is True


def test_the_same_key_with_another_body_is_a_conflict() -> None:
    # GIVEN an order submitted once
    w = world()
    w.service.submit(request(), user_id=TRADER, key="k-1")
    # WHEN another body reuses the key
    with pytest.raises(ConflictError, match="already used for a different order"):
        w.service.submit(request(quantity=200), user_id=TRADER, key="k-1")
    # THEN nothing more was stored
    assert len(w.orders.orders) == 1


def test_a_repeat_while_the_first_request_is_still_placing_is_a_conflict_after_the_wait() -> None:
    # GIVEN the first request stored its order but has not answered yet
    w = world()
    body = request()
    order = body.to_order(order_id="ord-first", user_id=TRADER, client_order_id="k-1")
    routing = factories.decision(order)
    w.orders.save_routed_order(
        order,
        request_hash=request_fingerprint(body),
        decision=routing,
        children=factories.children(order, routing),
        events=[],
    )
    # WHEN the key is sent again
    with pytest.raises(ConflictError, match="still being processed"):
        w.service.submit(body, user_id=TRADER, key="k-1")
    # THEN the repeat placed nothing
    assert w.gateway.placed == []


def test_each_placement_is_learned_once_and_cached_after_the_commit() -> None:
    # GIVEN the engine's broker rejects and the next one accepts
    w = world()
    first, second, _ = ranking(w, request())
    w.gateway.script[first] = REJECTED
    before = {b: w.profiles.profiles[(b, "RELIANCE")].sample_count for b in (first, second)}
    # WHEN the order is submitted
    result = w.service.submit(request(), user_id=TRADER, key="k-1").result
    # THEN one observation per child was recorded, in one recording
    assert w.orders.placements_recorded == 1
    children = w.orders.orders[result.order_id].children
    assert sorted(o.child_order_id or "" for o in w.orders.learned) == sorted(children)
    # AND the rejecting broker learned an error sample, the accepting one its acknowledgement
    rejecting = w.profiles.profiles[(first, "RELIANCE")]
    accepting = w.profiles.profiles[(second, "RELIANCE")]
    assert rejecting.sample_count == before[first] + 1
    assert rejecting.error_rate_percentage == 100.0
    assert accepting.response_time_ms == 5.0
    # AND the cache holds what was learned for the next order
    assert w.profiles.cached["RELIANCE"][first] == rejecting


def test_events_the_bus_refuses_stay_in_the_outbox_and_the_order_is_answered() -> None:
    # GIVEN the bus is down
    w = world()
    w.bus.down = True
    # WHEN the order is submitted
    outcome = w.service.submit(request(), user_id=TRADER, key="k-1")
    # THEN it is answered, and its events wait in the outbox for the relay, each failure counted
    assert outcome.result.status == "ROUTED"
    assert {e.detail_type for e in w.outbox.pending} == {"OrderRouted", "ChildOrderPlaced"}
    assert set(w.outbox.failures) == {e.event_id for e in w.outbox.pending}
