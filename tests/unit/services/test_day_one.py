"""Day one and staleness on in-memory fakes: priors for a new symbol, quiet vs stale profiles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.day_one import market_template, trades_symbol
from shared.domain.engine import EngineConfig, decide_route
from shared.domain.errors import InvalidOrderError, NoEligibleBrokerError
from shared.domain.learning import DAY_ONE
from shared.domain.market import MarketStatistics
from shared.domain.models import Quote
from shared.services.schemas import SmartOrderRequest
from tests import factories
from tests.fakes import routing_world

TRADER = "trader-1"
STATS = MarketStatistics(
    symbol="NEWCO",
    last_price=250.0,
    spread_bps=4.0,
    order_book_depth=40_000,
    volume=900_000,
    observed_at=factories.NOW,
)


def request(symbol: str = "NEWCO", **overrides: Any) -> SmartOrderRequest:
    body = {"symbol": symbol, "side": "BUY", "quantity": 100, "orderType": "MARKET"}
    return SmartOrderRequest.model_validate(body | overrides)


def test_the_template_carries_the_quote_figures_and_the_day_one_means() -> None:
    # GIVEN a fresh quote's statistics of a symbol nobody has a profile for
    # WHEN the day-one template is made
    template = market_template(STATS, factories.NOW)
    # THEN its market figures are the quote's and its learned figures the priors' means
    assert template.last_price == 250.0
    assert template.current_spread_bps == 4.0
    assert template.order_book_depth == 40_000
    assert template.market_updated_at == factories.NOW
    assert template.fill_rate_percentage == pytest.approx(100 * DAY_ONE.fill.mean)
    assert template.avg_execution_time_ms == DAY_ONE.latency.mean
    assert template.sample_count == 0


def test_a_symbol_no_broker_has_a_profile_for_routes_on_priors() -> None:
    # GIVEN brokers with profiles for RELIANCE only, and a fresh quote of NEWCO
    brokers = [factories.profile(b) for b in ("dhan", "upstox", "zerodha")]
    w = routing_world(
        brokers,
        now=factories.NOW,
        quotes={"NEWCO": Quote(bid=Decimal("249.95"), ask=Decimal("250.05"))},
        statistics={"NEWCO": STATS}.get,
    )
    # WHEN a NEWCO order is decided
    order = request().to_order(order_id="ord-new", user_id=TRADER, client_order_id="k-1")
    result = w.service.analyze(order)
    # THEN it is routed (not NO_ELIGIBLE_BROKER, not an unknown symbol) with low confidence,
    # every broker scored on its priors
    assert sum(a.quantity for a in result.allocations) == 100
    assert result.confidence_score < 0.2
    assert {s.broker_id for s in result.broker_scores} == {"dhan", "upstox", "zerodha"}


def test_without_market_data_a_new_symbol_stays_unknown() -> None:
    # GIVEN no statistics for NEWCO (its quote is stale or unavailable)
    w = routing_world(
        [factories.profile("zerodha")], now=factories.NOW, statistics=lambda _symbol: None
    )
    # WHEN it is ordered
    # THEN it is refused as an unknown symbol, nothing routed on priors alone
    with pytest.raises(InvalidOrderError, match="unknown symbol NEWCO"):
        w.service.submit(request(), user_id=TRADER, key="k-2")


def test_a_quiet_profile_routes_with_lower_confidence() -> None:
    # GIVEN one broker whose profile learned nothing for two days (a quiet symbol)
    config = EngineConfig(max_profile_age_s=86_400, max_market_age_s=900)
    fresh = factories.profile("zerodha", market_updated_at=factories.NOW, last_price=2950.0)
    quiet = fresh.model_copy(update={"last_updated": factories.NOW - timedelta(days=2)})
    order = factories.order(quantity=100)
    # WHEN it is routed, and the same order with the profile fresh
    quiet_decision = decide_route(order, [quiet], now=factories.NOW, config=config)
    fresh_decision = decide_route(order, [fresh], now=factories.NOW, config=config)
    # THEN the quiet profile is not excluded: it is routed, with less confidence
    assert [s.exclusion_reason for s in quiet_decision.broker_scores] == [None]
    assert [a.broker_id for a in quiet_decision.allocations] == ["zerodha"]
    assert quiet_decision.confidence_score < fresh_decision.confidence_score


def test_stale_market_data_excludes_with_its_reason() -> None:
    # GIVEN the only broker's market figures were last refreshed 20 minutes ago
    config = EngineConfig(max_market_age_s=900)
    stale = factories.profile("zerodha", market_updated_at=factories.NOW - timedelta(minutes=20))
    # WHEN an order is routed
    # THEN no broker is eligible, and the reason names the stale market data
    with pytest.raises(NoEligibleBrokerError) as caught:
        decide_route(factories.order(quantity=100), [stale], now=factories.NOW, config=config)
    assert "STALE_MARKET_DATA" in str(caught.value.reasons["zerodha"])


def test_rows_a_first_fill_created_without_market_figures_are_priced_from_the_quote() -> None:
    # GIVEN NEWCO's only profiles, created by its first fills: no depth, no volume, no price
    bare = [
        factories.profile(
            b,
            symbol="NEWCO",
            order_book_depth=0,
            recent_volume=0,
            sample_count=1,
            last_price=None,
        )
        for b in ("dhan", "zerodha")
    ]
    w = routing_world(bare, now=factories.NOW, statistics={"NEWCO": STATS}.get)
    # WHEN a NEWCO order is decided
    order = request().to_order(order_id="ord-2", user_id=TRADER, client_order_id="k-3")
    result = w.service.analyze(order)
    # THEN it routes on the quote's figures (the fresh price is the reference)
    assert sum(a.quantity for a in result.allocations) == 100
    assert all(
        abs(a.expected_execution_price - Decimal("250")) < Decimal("1") for a in result.allocations
    )


@pytest.mark.parametrize(
    ("adapter", "config", "expected"),
    [
        ("paper", {}, True),
        ("kite", {"app_ref": "kite/app"}, True),
        ("upstox", {"instruments": {"NSE:NEWCO": "NSE_EQ|X"}}, True),
        ("upstox", {"instruments": {"NSE:OTHER": "NSE_EQ|Y"}}, False),
        ("upstox", {}, False),
        ("dhan", {"security_ids": {"NSE:NEWCO": "1"}}, True),
        ("dhan", {"securityIds": {"NSE:NEWCO": "1"}}, True),
        ("dhan", {"security_ids": {}}, False),
    ],
)
def test_only_brokers_that_can_be_sent_the_symbol_get_a_day_one_profile(
    adapter: str, config: dict[str, Any], expected: bool
) -> None:
    # GIVEN a broker's adapter and configuration
    # WHEN asked whether it can be sent NEWCO on NSE
    # THEN only an instrument-mapping adapter whose map lacks it cannot
    assert trades_symbol(adapter, config, "NEWCO") is expected
