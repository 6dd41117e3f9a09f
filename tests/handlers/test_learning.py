"""What the router learns, end to end: real Postgres and Redis, deterministic paper brokers.

Orders go through ``route_order`` (or the routing service the handler calls); the paper brokers'
postbacks, written to the outbox as ``ExecutionReported`` events, are then tracked by the
execution tracker as ``track_execution`` would. Learned profiles are read back from Postgres.
"""

from __future__ import annotations

import dataclasses
import json
import time
from decimal import Decimal
from typing import Any

from functions.market_refresh import handler as market_refresh
from functions.route_order import handler
from local import seed
from local.apigw import LocalLambdaContext
from shared.domain.contracts import DetailType
from shared.domain.execution import ExecutionReport, ProfileObservation
from shared.domain.learning import Priors
from shared.domain.models import BrokerProfile, Quote, Side
from shared.services.schemas import SmartOrderRequest
from shared.settings import Settings
from shared.wiring import Wiring
from tests import factories
from tests.handlers.support import API, OTHER_TRADER, RELIABLE, TRADER, call

SMART = f"{API}/orders/smart"
ANALYZE = f"{API}/orders/analyze"
DEFAULT_ALPHA = Settings.model_fields["ewma_alpha"].default


def only_broker(wiring: Wiring, broker_id: str, **behaviour: Any) -> None:
    """Leave ``broker_id`` the one enabled broker, with ``behaviour`` on top of RELIABLE."""
    for config in seed.seed_brokers():
        chosen = config.broker_id == broker_id
        wiring.brokers.upsert(
            config.model_copy(
                update={
                    "enabled": chosen,
                    "rate_limit_per_s": 100_000,
                    "adapter_config": {**config.adapter_config, **RELIABLE, **behaviour}
                    if chosen
                    else config.adapter_config,
                }
            )
        )


def rows(wiring: Wiring, sql: str, *params: Any) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        return conn.execute(sql, params).fetchall()


def track_reports(wiring: Wiring, order_id: str) -> None:
    """Track the order's postbacks, as track_execution does with the events."""
    details = rows(
        wiring,
        "SELECT detail FROM event_outbox WHERE detail_type = %s "
        "AND detail->>'order_id' = %s ORDER BY id",
        DetailType.EXECUTION_REPORTED,
        order_id,
    )
    reports = [ExecutionReport.model_validate(r["detail"]["report"]) for r in details]
    if reports:
        wiring.tracker.track_batch(reports)


def submit(wiring: Wiring, symbol: str, n: int, *, quote: dict[str, str] | None = None) -> str:
    request = SmartOrderRequest(
        symbol=symbol,
        side=Side.BUY,
        quantity=1,
        client_order_id=f"learn-{n}",
        quote=Quote.model_validate(quote) if quote else None,
    )
    outcome = wiring.routing.submit(request, user_id="trader-1", key=request.client_order_id)
    track_reports(wiring, outcome.result.order_id)
    return outcome.result.order_id


def profile(wiring: Wiring, broker_id: str, symbol: str) -> BrokerProfile:
    found = wiring.profile_repository.get(broker_id, symbol)
    assert found is not None
    return found


def expected_price(claims: dict[str, Any]) -> str:
    body = {"symbol": "ITC", "side": "BUY", "quantity": 1}
    status, answer, _ = call(handler, "POST", ANALYZE, body=body, claims=claims)
    assert status == 200, answer
    return str(answer["expectedExecution"]["price"])


# -- client quotes never poison shared learning ------------------------------------------------


def test_the_issues_poisoning_quotes_are_refused_and_change_nothing(wiring: Wiring) -> None:
    # GIVEN ITC at about 418.70 and another trader's expected price for one share
    profiles_before = wiring.profile_repository.list_for_symbol("ITC")
    other_before = expected_price(OTHER_TRADER)
    poison = {"bid": "230.33", "ask": "259.65"}
    # WHEN one trader sends 15 one-share orders quoting 230.33 / 259.65
    answers = [
        call(
            handler,
            "POST",
            SMART,
            body={"symbol": "ITC", "side": "BUY", "quantity": 1, "quote": poison},
            claims=TRADER,
        )
        for _ in range(15)
    ]
    # THEN each is refused with 422 naming quote, in the one error shape
    assert {status for status, _, _ in answers} == {422}
    for _, body, _ in answers:
        assert body["error"]["code"] == "INVALID_ORDER"
        assert body["error"]["field"] == "quote"
        assert "from the market mid" in body["error"]["message"]
    # AND nothing was stored, no broker's profile moved, nor the other trader's expected price
    assert rows(wiring, "SELECT count(*) AS n FROM orders") == [{"n": 0}]
    assert wiring.profile_repository.list_for_symbol("ITC") == profiles_before
    assert expected_price(OTHER_TRADER) == other_before
    # AND the same quote on /analyze is refused too
    status, body, _ = call(
        handler,
        "POST",
        ANALYZE,
        body={"symbol": "ITC", "side": "BUY", "quantity": 1, "quote": poison},
    )
    assert (status, body["error"]["field"]) == (422, "quote")


def test_a_zero_width_quote_is_refused(wiring: Wiring) -> None:
    # GIVEN a quote whose bid equals its ask
    body = {
        "symbol": "ITC",
        "side": "BUY",
        "quantity": 1,
        "quote": {"bid": "418.7", "ask": "418.7"},
    }
    # WHEN it is sent
    status, answer, _ = call(handler, "POST", SMART, body=body)
    # THEN it is refused naming quote
    assert status == 422
    assert answer["error"]["field"] == "quote"
    assert "zero width" in answer["error"]["message"]


def test_an_in_band_client_quote_steers_the_order_but_learning_uses_the_servers(
    wiring: Wiring,
) -> None:
    # GIVEN one broker and the server's ITC quote
    only_broker(wiring, "zerodha")
    server = wiring.market.quote("ITC")
    assert server is not None
    assert server.ask is not None
    # WHEN a trader routes 15 orders quoting a market 0.9 % lower (inside the 1 % band)
    skewed = {"bid": "414.90", "ask": "415.00"}
    order_ids = [submit(wiring, "ITC", n, quote=skewed) for n in range(15)]
    # THEN every child records the server's arrival quote, not the client's
    children = rows(
        wiring,
        "SELECT arrival_bid, arrival_ask FROM child_orders WHERE order_id = ANY(%s)",
        order_ids,
    )
    assert len(children) == 15
    assert {(c["arrival_bid"], c["arrival_ask"]) for c in children} == {(server.bid, server.ask)}
    # AND every execution was measured against the server's ask
    metrics = rows(wiring, "SELECT market_conditions, price_improvement_bps FROM execution_metrics")
    assert {Decimal(m["market_conditions"]["referencePrice"]) for m in metrics} == {server.ask}
    # AND the learned price improvement is not the -1 % the client's quote would have implied
    assert profile(wiring, "zerodha", "ITC").price_improvement_bps >= 0


def test_without_a_server_reference_a_client_quote_is_never_learned(wiring: Wiring) -> None:
    # GIVEN a symbol the server has no price for (no profile knows a last price)
    only_broker(wiring, "zerodha")
    for p in wiring.profile_repository.list_for_symbol("WIPRO"):
        wiring.profile_repository.upsert(p.model_copy(update={"last_price": None}))
    assert wiring.market.quote("WIPRO") is None
    before = profile(wiring, "zerodha", "WIPRO")
    # WHEN a trader routes 10 orders on a quote of their own, far from the real 248.60
    orders = [
        submit(wiring, "WIPRO", n, quote={"bid": "200.00", "ask": "200.10"}) for n in range(10)
    ]
    # THEN the orders were routed on it, but no child stored it as its arrival reference
    assert len(orders) == 10
    children = rows(wiring, "SELECT arrival_bid, arrival_ask FROM child_orders")
    assert {(c["arrival_bid"], c["arrival_ask"]) for c in children} == {(None, None)}
    # AND the profile learned the fills but not a price against the client's quote
    after = profile(wiring, "zerodha", "WIPRO")
    assert after.sample_count == before.sample_count + 10
    assert after.slippage_bps == before.slippage_bps
    assert after.price_improvement_bps == before.price_improvement_bps


# -- learning that sees every outcome ------------------------------------------------------------


def replayed(before: BrokerProfile, observations: list[ProfileObservation]) -> Priors:
    """The posterior the domain computes from these observations, the seeded profile as prior."""
    return factories.replayed_posterior(
        before.broker_id, before.symbol, observations, alpha=DEFAULT_ALPHA, before=before
    )


def error_pct(post: Priors) -> float:
    """The error rate as the DECIMAL(5,2) column stores it."""
    return round(100 * post.error.mean, 2)


def test_placement_rejects_are_learned_once_each(wiring: Wiring) -> None:
    # GIVEN one broker that rejects half its children at placement
    only_broker(wiring, "zerodha", rejectRate=0.5)
    before = profile(wiring, "zerodha", "SBIN")
    # WHEN 60 one-share orders are routed and every postback is tracked
    order_ids = [submit(wiring, "SBIN", n) for n in range(60)]
    # THEN each child was one sample: rejects at placement, fills at their report
    outcomes = [
        rows(wiring, "SELECT status FROM child_orders WHERE order_id = %s", order_id)[0]["status"]
        for order_id in order_ids
    ]
    rejects = outcomes.count("REJECTED")
    assert 15 < rejects < 45  # the paper broker's seeded draws
    after = profile(wiring, "zerodha", "SBIN")
    assert after.sample_count == before.sample_count + 60
    # AND the error rate is exactly the discounted Beta posterior of those outcomes, in order
    samples = [ProfileObservation(is_error=status == "REJECTED") for status in outcomes]
    assert after.error_rate_percentage == error_pct(replayed(before, samples))
    # AND it rose from the seeded 1 % toward 50 %, where it used to fall
    assert after.error_rate_percentage > 25.0
    # AND the profile says how sure it is: the outcomes since the rate last changed (here the
    #     60 since the start, where the change test puts the change point) and a prior's few
    assert after.uncertainty is not None
    assert 60 <= after.uncertainty.error_rate.weight <= 70


def test_timeouts_are_errors_with_latency_at_the_bound(wiring: Wiring) -> None:
    # GIVEN one broker that never acknowledges, and a 500 ms placement timeout
    only_broker(wiring, "upstox", timeoutRate=1.0)
    before = profile(wiring, "upstox", "SBIN")
    # WHEN 20 orders are routed to it (they all time out, and no report ever comes)
    for n in range(20):
        submit(wiring, "SBIN", n)
    # THEN each timeout was one error sample, with its acknowledgement time at the bound
    after = profile(wiring, "upstox", "SBIN")
    assert after.sample_count == before.sample_count + 20
    timeout = ProfileObservation(
        is_error=True, fill_rate_pct=0.0, response_time_ms=500.0, is_timeout=True
    )
    post = replayed(before, [timeout] * 20)
    assert after.error_rate_percentage == error_pct(post)
    assert after.fill_rate_percentage < before.fill_rate_percentage
    assert after.response_time_ms == round(post.ack.mean)


def test_acknowledgement_latency_is_learned(wiring: Wiring) -> None:
    # GIVEN one broker whose acknowledgements take 300 ms (seeded profile: 20 ms)
    only_broker(wiring, "dhan", ackLatencyMs=300, ackJitterMs=0)
    before = profile(wiring, "dhan", "SBIN")
    assert before.response_time_ms < 100
    # WHEN 40 orders are routed to it
    for n in range(40):
        submit(wiring, "SBIN", n)
    # THEN its learned acknowledgement time is within 10 % of 300 ms
    after = profile(wiring, "dhan", "SBIN")
    assert abs(after.response_time_ms - 300) <= 30
    # AND acknowledgements did not count as outcome samples: one per child, from its report
    assert after.sample_count == before.sample_count + 40


def test_slippage_learned_against_arrival_converges_to_the_truth(wiring: Wiring) -> None:
    # GIVEN one broker that fills 6 bps through the far touch, every time
    only_broker(wiring, "fyers", slippageBpsMean=6.0, slippageBpsStd=0.5)
    # WHEN 100 one-share RELIANCE orders are routed and tracked, one at a time
    for n in range(100):
        submit(wiring, "RELIANCE", n)
    # THEN the learned slippage is within 10 % of 6 bps (against the router's own expected
    #      price it used to settle near half of it), and nothing was "improved"
    learned = profile(wiring, "fyers", "RELIANCE")
    assert abs(learned.slippage_bps - 6.0) <= 0.6
    assert learned.price_improvement_bps == 0.0
    # AND every execution carries its price metrics (the arrival quote was stored)
    metrics = rows(wiring, "SELECT slippage_bps, price_improvement_bps FROM execution_metrics")
    assert len(metrics) == 100
    assert all(m["slippage_bps"] is not None for m in metrics)
    assert all(m["price_improvement_bps"] is not None for m in metrics)


def test_analytics_fill_rate_includes_failed_children(wiring: Wiring) -> None:
    # GIVEN one broker that rejects half its children
    only_broker(wiring, "zerodha", rejectRate=0.5)
    for n in range(20):
        submit(wiring, "SBIN", n)
    filled = rows(wiring, "SELECT coalesce(sum(filled_quantity), 0) AS n FROM child_orders")[0]
    # WHEN the trader reads their analytics
    status, body, _ = call(handler, "GET", f"{API}/analytics/execution", query={"days": "1"})
    # THEN the broker's fill rate is filled over routed quantity
    assert status == 200, body
    [broker] = body["byBroker"]
    assert broker["orderedQuantity"] == 20
    assert broker["filledQuantity"] == filled["n"] < 20
    assert broker["fillRatePercentage"] == round(100 * filled["n"] / 20, 2)
    assert json.dumps(body)  # serialisable, unknowns as null


class SlowGateway:
    """Wraps the real gateway: ``broker_id`` answers after ``delay_s`` without timing itself
    (as an adapter that gives no ``response_time_ms``), or never within the bound."""

    def __init__(self, real: Any, broker_id: str, delay_s: float) -> None:
        self._real = real
        self._broker_id = broker_id
        self._delay_s = delay_s

    def place(self, child: Any, *, timeout_s: float) -> Any:
        result = self._real.place(child, timeout_s=timeout_s)
        if child.broker_id != self._broker_id:
            return result
        time.sleep(self._delay_s)
        return dataclasses.replace(result, response_time_ms=None)


def test_without_an_adapter_figure_the_measured_call_time_is_learned(wiring: Wiring) -> None:
    # GIVEN one broker whose adapter answers after 150 ms and does not time itself
    only_broker(wiring, "zerodha")
    wiring.__dict__["gateway"] = SlowGateway(wiring.gateway, "zerodha", 0.15)
    before = profile(wiring, "zerodha", "SBIN")
    # WHEN 3 orders are routed to it
    for n in range(3):
        submit(wiring, "SBIN", n)
    # THEN the learned ack time moved from the seeded figure toward the measured >= 150 ms
    after = profile(wiring, "zerodha", "SBIN")
    assert before.response_time_ms < 150
    assert after.response_time_ms > before.response_time_ms + 30


def test_a_hung_adapter_is_a_timeout_learned_at_the_bound(wiring: Wiring) -> None:
    # GIVEN the one broker's adapter hanging past the 500 ms bound
    only_broker(wiring, "upstox")
    wiring.__dict__["gateway"] = SlowGateway(wiring.gateway, "upstox", 1.5)
    before = profile(wiring, "upstox", "SBIN")
    # WHEN an order is routed to it
    order_id = submit(wiring, "SBIN", 0)
    # THEN its child timed out and was learned once: an error, its ack time at the bound
    [child] = rows(wiring, "SELECT status FROM child_orders WHERE order_id = %s", order_id)
    assert child["status"] == "TIMED_OUT"
    after = profile(wiring, "upstox", "SBIN")
    assert after.sample_count == before.sample_count + 1
    post = replayed(
        before, [ProfileObservation(is_error=True, fill_rate_pct=0.0, response_time_ms=500.0)]
    )
    assert after.error_rate_percentage == error_pct(post)
    assert after.response_time_ms == round(post.ack.mean)


# -- outages: a run of timeouts is the broker's health, found again by a probe ----------------


def set_behaviour(wiring: Wiring, broker_id: str, **behaviour: Any) -> None:
    """Change a paper broker's truth as an operator does (``adapter_config``, then a reload)."""
    config = wiring.brokers.get(broker_id)
    assert config is not None
    wiring.brokers.upsert(
        config.model_copy(update={"adapter_config": {**config.adapter_config, **behaviour}})
    )
    wiring.gateway.reload(broker_id)


def test_an_outage_is_probed_and_forgotten_when_the_broker_is_back(wiring: Wiring) -> None:
    # GIVEN one reliable broker that learned from 20 orders, then goes down for three
    only_broker(wiring, "upstox")
    for n in range(20):
        submit(wiring, "SBIN", n)
    healthy = profile(wiring, "upstox", "SBIN")
    set_behaviour(wiring, "upstox", timeoutRate=1.0)
    for n in range(20, 23):
        submit(wiring, "SBIN", n)
    down = profile(wiring, "upstox", "SBIN")
    # THEN the timeouts count while the outage lasts, and the broker is in an outage
    assert down.error_rate_percentage > healthy.error_rate_percentage + 3
    assert wiring.profile_repository.brokers_in_outage() == ["upstox"]
    # WHEN the probe runs while it is still down
    report = wiring.health_probe.run()
    # THEN nothing is forgotten
    assert (report.recovered, report.down, report.unknown) == ([], ["upstox"], [])
    assert profile(wiring, "upstox", "SBIN").error_rate_percentage == down.error_rate_percentage
    # WHEN it is back and the probe runs again
    set_behaviour(wiring, "upstox", timeoutRate=0.0)
    report = wiring.health_probe.run()
    # THEN the outage is forgotten but for its first timeout: the error and fill rates are
    #      those before it plus one error, far from the three timeouts'
    assert report.recovered == ["upstox"]
    back = profile(wiring, "upstox", "SBIN")
    assert healthy.error_rate_percentage < back.error_rate_percentage
    assert (
        back.error_rate_percentage - healthy.error_rate_percentage
        < (down.error_rate_percentage - healthy.error_rate_percentage) / 2
    )
    assert down.fill_rate_percentage < back.fill_rate_percentage < healthy.fill_rate_percentage
    assert back.sample_count == down.sample_count
    assert wiring.profile_repository.brokers_in_outage() == []
    # AND the router reads the recovered profile at once (the cache was refreshed)
    [cached] = [p for p in wiring.profiles.profiles_for("SBIN") if p.broker_id == "upstox"]
    assert cached.error_rate_percentage == back.error_rate_percentage
    # AND a later probe has nothing to do
    assert wiring.health_probe.run().as_dict() == {"recovered": [], "down": [], "unknown": []}


def test_a_broker_without_a_probe_keeps_its_outage_until_an_order_answers(
    wiring: Wiring,
) -> None:
    # GIVEN a broker in an outage whose adapter cannot be probed
    only_broker(wiring, "upstox", timeoutRate=1.0)
    for n in range(3):
        submit(wiring, "SBIN", n)
    down = profile(wiring, "upstox", "SBIN")
    wiring.__dict__["gateway"] = NoProbeGateway(wiring.gateway)
    wiring.__dict__.pop("health_probe", None)
    # WHEN the probe runs
    report = wiring.health_probe.run()
    # THEN it cannot tell, and the episode goes on
    assert report.unknown == ["upstox"]
    assert profile(wiring, "upstox", "SBIN").error_rate_percentage == down.error_rate_percentage
    # WHEN an order to it is answered (the broker is back)
    set_behaviour(wiring, "upstox", timeoutRate=0.0)
    submit(wiring, "SBIN", 3)
    # THEN the episode ends with that order: no broker is in an outage any more
    assert wiring.profile_repository.brokers_in_outage() == []
    assert profile(wiring, "upstox", "SBIN").error_rate_percentage < down.error_rate_percentage


def test_a_flapping_broker_is_recovered_each_time_it_comes_back(wiring: Wiring) -> None:
    # GIVEN a reliable broker that goes down and comes back twice
    only_broker(wiring, "upstox")
    for n in range(10):
        submit(wiring, "SBIN", n)
    n = 10
    for _ in range(2):
        set_behaviour(wiring, "upstox", timeoutRate=1.0)
        for _ in range(3):
            submit(wiring, "SBIN", n)
            n += 1
        # WHEN the probe finds it down, then back
        assert wiring.health_probe.run().down == ["upstox"]
        set_behaviour(wiring, "upstox", timeoutRate=0.0)
        assert wiring.health_probe.run().recovered == ["upstox"]
        submit(wiring, "SBIN", n)
        n += 1
    # THEN both episodes were forgotten and counted, broker-wide
    [wide] = rows(wiring, "SELECT evidence FROM broker_evidence WHERE broker_id = 'upstox'")
    assert wide["evidence"]["outage"] is None
    assert 1.5 < wide["evidence"]["outages"] < 2.0
    # AND its error rate counts one error per episode (the order that found it), not the six
    #     timeouts in 18 orders
    assert profile(wiring, "upstox", "SBIN").error_rate_percentage < 15.0


def test_the_market_refresh_job_reports_its_health_probe(wiring: Wiring) -> None:
    # GIVEN a broker in an outage
    only_broker(wiring, "upstox", timeoutRate=1.0)
    for n in range(3):
        submit(wiring, "SBIN", n)
    # WHEN the scheduled statistics job runs
    result = market_refresh.lambda_handler(
        {"job": "statistics"}, LocalLambdaContext("market_refresh", 300)
    )
    # THEN its answer says what the probe found
    assert result["health"] == {"ok": True, "recovered": [], "down": ["upstox"], "unknown": []}


class NoProbeGateway:
    """Wraps the real gateway as one whose adapters have no health probe."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def place(self, child: Any, *, timeout_s: float) -> Any:
        return self._real.place(child, timeout_s=timeout_s)

    def probe(self, broker_id: str, *, timeout_s: float) -> bool | None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
