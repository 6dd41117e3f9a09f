"""Trader broker connections in the domain: link status, expiry, reasons, and routing by them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.broker_links import (
    IST,
    KITE_EXPIRY,
    BrokerLink,
    LinkStatus,
    kite_checksum,
    link_reason,
    mask_account,
    next_ist,
)
from shared.domain.eligibility import access_reasons
from shared.domain.engine import decide_route
from shared.domain.errors import NoEligibleBrokerError
from tests.factories import NOW, make_order, three_brokers


def link(status: LinkStatus = LinkStatus.LIVE, **changes: object) -> BrokerLink:
    fields: dict[str, object] = {
        "user_id": "alice",
        "broker_id": "zerodha",
        "status": status,
        "linked_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(hours=1),
        "updated_at": NOW - timedelta(hours=1),
    }
    return BrokerLink.model_validate(fields | changes)


def test_kite_tokens_expire_at_six_in_the_morning_ist() -> None:
    # GIVEN a login at 22:00 IST and one at 05:00 IST
    evening = datetime(2026, 12, 1, 22, 0, tzinfo=IST)
    early = datetime(2026, 12, 2, 5, 0, tzinfo=IST)
    # WHEN their expiries are computed
    # THEN both end at the next 06:00 IST
    assert next_ist(evening, KITE_EXPIRY) == datetime(2026, 12, 2, 6, 0, tzinfo=IST)
    assert next_ist(early, KITE_EXPIRY) == datetime(2026, 12, 2, 6, 0, tzinfo=IST)
    assert next_ist(early.astimezone(UTC), KITE_EXPIRY).tzinfo is IST


def test_the_kite_checksum_is_sha256_of_key_token_and_secret() -> None:
    # GIVEN Kite's documented inputs
    # WHEN the checksum is computed
    checksum = kite_checksum("key", "token", "secret")
    # THEN it is the hex SHA-256 of their concatenation
    assert checksum == hashlib.sha256(b"keytokensecret").hexdigest()


@pytest.mark.parametrize(
    ("account", "hint"), [("AB1234", "AB**34"), ("1100000001", "11******01"), ("XY1", "***")]
)
def test_account_hints_are_masked(account: str, hint: str) -> None:
    # GIVEN a broker account id
    # WHEN it is masked
    # THEN only its ends show
    assert mask_account(account) == hint


def test_a_live_link_past_its_expiry_reads_expired() -> None:
    # GIVEN a LIVE link whose expiry passed
    stale = link(expires_at=NOW - timedelta(seconds=1))
    # WHEN its status is read now
    # THEN it is EXPIRED and not live
    assert stale.status_at(NOW) is LinkStatus.EXPIRED
    assert not stale.live_at(NOW)
    assert link().live_at(NOW)


@pytest.mark.parametrize(
    ("adapter", "found", "expected"),
    [
        ("paper", None, None),
        ("kite", link(), None),
        ("kite", None, "no kite connection"),
        ("kite", link(LinkStatus.EXPIRED), "kite connection expired"),
        ("kite", link(expires_at=NOW - timedelta(seconds=1)), "kite connection expired"),
        ("upstox", link(LinkStatus.REVOKED), "upstox connection was unlinked"),
        ("generic", None, "no adapter available"),
    ],
)
def test_each_broker_is_usable_or_has_a_reason(
    adapter: str, found: BrokerLink | None, expected: str | None
) -> None:
    # GIVEN a broker's adapter and the trader's link to it
    # WHEN its reason is asked
    reason = link_reason("zerodha", adapter, found, NOW)
    # THEN paper and live links pass, everything else names why
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


def test_a_trader_without_a_kite_connection_is_never_routed_to_kite() -> None:
    # GIVEN Kite (zerodha) a real broker the trader has no connection to, the others paper
    adapters = {"zerodha": "kite", "upstox": "paper", "dhan": "paper"}
    unavailable = access_reasons(adapters, {}, now=NOW)
    # WHEN a large order is routed, one that would otherwise use every broker
    decision = decide_route(
        make_order(quantity=1_000_000), three_brokers(), now=NOW, unavailable=unavailable
    )
    # THEN Kite gets nothing and the decision says why
    assert "zerodha" not in {a.broker_id for a in decision.allocations}
    assert "zerodha" not in decision.fallback_broker_ids
    [kite] = [s for s in decision.broker_scores if s.broker_id == "zerodha"]
    assert kite.exclusion_reason == unavailable["zerodha"]
    assert "no kite connection" in kite.exclusion_reason


def test_no_connection_anywhere_is_no_eligible_broker_with_every_reason() -> None:
    # GIVEN three real brokers and no connection
    adapters = {"zerodha": "kite", "upstox": "upstox", "dhan": "dhan"}
    unavailable = access_reasons(adapters, {}, now=NOW)
    # WHEN an order is routed
    with pytest.raises(NoEligibleBrokerError) as raised:
        decide_route(make_order(quantity=100), three_brokers(), now=NOW, unavailable=unavailable)
    # THEN every broker's reason names its missing connection
    assert set(raised.value.reasons) == {"zerodha", "upstox", "dhan"}
    assert "no dhan connection" in raised.value.reasons["dhan"]
