"""Where a failed child's quantity cascades to: the first ranked broker eligibility lets take it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.cascade import CascadeTarget, choose_cascade_target, new_child
from shared.domain.models import BrokerProfile, BrokerStatus, Quote
from tests import factories

NOW = factories.NOW
RANKED = ["zerodha", "upstox", "dhan"]
MAX_AGE_S = 600


def choose(
    profiles: list[BrokerProfile],
    *,
    quantity: int = 100,
    failed: frozenset[str] = frozenset({"zerodha"}),
    recent: dict[str, int] | None = None,
    now_offset_s: float = 0,
) -> CascadeTarget:
    return choose_cascade_target(
        factories.order(quantity=300),
        quantity,
        RANKED,
        {p.broker_id: p for p in profiles},
        failed=failed,
        now=NOW + timedelta(seconds=now_offset_s),
        max_profile_age_s=MAX_AGE_S,
        max_market_age_s=MAX_AGE_S,
        recent_orders=recent or {},
    )


def test_the_next_ranked_broker_that_has_not_failed_takes_the_quantity() -> None:
    # GIVEN three healthy brokers, the first of which failed
    profiles = [factories.profile(b) for b in RANKED]
    # WHEN the cascade target is chosen
    target = choose(profiles)
    # THEN the next ranked one takes it, and nobody was passed over
    assert target == CascadeTarget("upstox", ())


@pytest.mark.parametrize(
    ("upstox", "recent", "offset_s", "reason"),
    [
        ({"status": BrokerStatus.OFFLINE}, {}, 0, "broker is OFFLINE"),
        ({"status": BrokerStatus.MAINTENANCE}, {}, 0, "broker is MAINTENANCE"),
        ({"market_updated_at": NOW - timedelta(seconds=MAX_AGE_S)}, {}, 5, "STALE_MARKET_DATA"),
        ({"rate_limit_per_s": 3}, {"upstox": 3}, 0, "rate limit exhausted"),
        ({"lot_size": 75}, {}, 0, "quantity is not a whole number of lots of 75"),
        ({"min_order_size": 500}, {}, 0, "below the broker's minimum of 500"),
        ({"max_order_size": 50}, {}, 0, "above the broker's maximum order size 50"),
    ],
)
def test_a_broker_eligibility_excludes_is_skipped_with_its_reason(
    upstox: dict[str, Any], recent: dict[str, int], offset_s: float, reason: str
) -> None:
    # GIVEN the next-ranked broker went offline, stale, rate-limited, or cannot take the size
    profiles = [
        factories.profile("zerodha"),
        factories.profile("upstox", **upstox),
        factories.profile("dhan"),
    ]
    # WHEN the cascade target is chosen (time has moved on by offset_s)
    target = choose(profiles, recent=recent, now_offset_s=offset_s)
    # THEN it is passed over with the reason, and the one after it takes the quantity
    assert target.broker_id == "dhan"
    [(skipped, why)] = target.skipped
    assert skipped == "upstox"
    assert reason in why


def test_no_target_when_every_other_broker_is_excluded_or_failed() -> None:
    # GIVEN zerodha and upstox failed and dhan is offline
    profiles = [
        factories.profile("zerodha"),
        factories.profile("upstox"),
        factories.profile("dhan", status=BrokerStatus.OFFLINE),
    ]
    # WHEN the cascade target is chosen
    target = choose(profiles, failed=frozenset({"zerodha", "upstox"}))
    # THEN there is none, and only the excluded broker is listed (failures have their own record)
    assert target == CascadeTarget(None, (("dhan", "broker is OFFLINE"),))


def test_a_ranked_broker_without_a_profile_is_skipped() -> None:
    # GIVEN the decision ranked a broker whose profile is no longer known
    profiles = [factories.profile("zerodha"), factories.profile("dhan")]
    # WHEN the cascade target is chosen
    target = choose(profiles)
    # THEN it is skipped with its reason
    assert target == CascadeTarget("dhan", (("upstox", "no profile for RELIANCE"),))


def test_a_busy_broker_still_takes_a_cascade() -> None:
    # GIVEN the next broker is BUSY (penalised by scoring, never excluded)
    profiles = [factories.profile(b) for b in RANKED]
    profiles[1] = factories.profile("upstox", status=BrokerStatus.BUSY)
    # WHEN / THEN it takes the quantity
    assert choose(profiles).broker_id == "upstox"


def test_new_child_copies_the_parent_and_the_server_arrival_quote() -> None:
    # GIVEN a limit order and the server's arrival quote
    order = factories.order(order_type="LIMIT", limit_price=Decimal("2950.00"), quantity=300)
    arrival = Quote(bid=Decimal("2949.95"), ask=Decimal("2950.05"))
    # WHEN a cascaded child is built
    child = new_child(
        order,
        arrival,
        child_order_id=f"{order.order_id}-c1",
        broker_id="upstox",
        quantity=100,
        expected_price=Decimal("2950.00"),
        priority=1,
        attempt=2,
        cascaded_from="zerodha",
    )
    # THEN it carries the parent's instrument, prices and trader, and the arrival quote
    assert (child.order_id, child.user_id, child.symbol) == (
        order.order_id,
        order.user_id,
        order.symbol,
    )
    assert child.limit_price == Decimal("2950.00")
    assert (child.arrival_bid, child.arrival_ask) == (arrival.bid, arrival.ask)
    assert (child.attempt, child.cascaded_from, child.status.value) == (2, "zerodha", "PENDING")
