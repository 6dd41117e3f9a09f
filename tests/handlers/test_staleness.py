"""Quiet profiles route; stale market data excludes with its reason (route_order, real Postgres).

docs/routing-engine.md, "Eligibility": the age of what was learned lowers confidence, the age of
the market figures (``market_updated_at``, ROUTER_MARKET_STATS_MAX_AGE_S) excludes.
"""

from __future__ import annotations

from typing import Any

from functions.route_order import handler as route_order
from shared.wiring import Wiring
from tests.handlers.support import API, call

ORDER = {"symbol": "RELIANCE", "side": "BUY", "quantity": 100, "orderType": "MARKET"}


def _execute(wiring: Wiring, sql: str) -> None:
    with wiring.database.connection() as conn:
        conn.execute(sql)


def _analyze() -> tuple[int, dict[str, Any]]:
    status, body, _ = call(route_order, "POST", f"{API}/orders/analyze", body=ORDER)
    return status, dict(body)


def test_profiles_that_learned_nothing_for_two_days_still_route_with_less_confidence(
    wiring: Wiring,
) -> None:
    # GIVEN RELIANCE's decision while its profiles are fresh
    status, fresh = _analyze()
    assert status == 200, fresh
    # WHEN every RELIANCE profile learned nothing for two days (a quiet symbol), cache cleared
    _execute(
        wiring,
        "UPDATE broker_execution_profiles SET last_updated = last_updated - interval '2 days' "
        "WHERE symbol = 'RELIANCE'",
    )
    wiring.profiles.refresh("RELIANCE")
    status, quiet = _analyze()
    # THEN the order still routes (no broker is excluded for it), with less confidence
    assert status == 200, quiet
    assert all(s["exclusionReason"] is None for s in quiet["brokerScores"]), quiet
    assert sum(a["quantity"] for a in quiet["allocations"]) == 100
    assert quiet["confidenceScore"] < fresh["confidenceScore"]


def test_market_figures_older_than_the_limit_exclude_with_stale_market_data(
    wiring: Wiring,
) -> None:
    # GIVEN zerodha's RELIANCE market figures were last taken from a quote an hour ago and the
    # other brokers' a minute ago (limit: 15 minutes)
    _execute(
        wiring,
        "UPDATE broker_execution_profiles SET market_updated_at = CASE broker_id "
        "WHEN 'zerodha' THEN now() AT TIME ZONE 'UTC' - interval '1 hour' "
        "ELSE now() AT TIME ZONE 'UTC' - interval '1 minute' END WHERE symbol = 'RELIANCE'",
    )
    wiring.profiles.refresh("RELIANCE")
    # WHEN an order is decided
    status, body = _analyze()
    # THEN zerodha is excluded with the reason, and the others route it
    assert status == 200, body
    reasons = {s["brokerId"]: s["exclusionReason"] for s in body["brokerScores"]}
    assert reasons["zerodha"].startswith("STALE_MARKET_DATA: market data taken 36")
    assert "zerodha" not in {a["brokerId"] for a in body["allocations"]}
    # AND when every broker's figures are that old, the order gets no broker, with each reason
    _execute(
        wiring,
        "UPDATE broker_execution_profiles "
        "SET market_updated_at = now() AT TIME ZONE 'UTC' - interval '1 hour' "
        "WHERE symbol = 'RELIANCE'",
    )
    wiring.profiles.refresh("RELIANCE")
    status, refused = _analyze()
    assert status == 422, refused
    assert refused["error"]["code"] == "NO_ELIGIBLE_BROKER"
    assert all(r.startswith("STALE_MARKET_DATA") for r in refused["error"]["reasons"].values())
