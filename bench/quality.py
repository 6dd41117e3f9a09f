"""Routing quality: the router against an oracle, while the paper brokers' truth changes.

Run: ``python -m bench.quality`` (``make quality``) -> ``bench/results/quality.json`` and a chart
per scenario in ``docs/quality/``. Method, scenarios and figures: ``docs/quality.md``.

Every scenario starts from a fresh migrated database and Redis prefix, the seeded (misleading)
profiles and the hidden truth of :data:`FLEET`, then sends :data:`ORDERS` SMART_BALANCE market
buys through ``RoutingService.submit``; the paper brokers' execution reports go through
``ExecutionTracker.track`` as ``track_execution`` would, so the router learns as in production.
At order :data:`CHANGE_AT` one broker's truth changes (``brokers.adapter_config``, applied by
``BrokerGatewayRegistry.reload``). Every order's plan is valued in closed form under the truth of
that moment (:func:`expected_cost`), as are the plans of an oracle that knows the truth,
round-robin, lowest brokerage and the best static broker in hindsight. Quantities and the paper
brokers' draws come from fixed seeds, so a run can be replayed.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import statistics
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.harness import write_result
from local import seed
from local.services import EmbeddedPostgres, EmbeddedRedis, scratch_database
from shared.adapters.brokers.paper import PaperBehaviour
from shared.adapters.postgres.migrations import apply_migrations
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.charges import brokerage_per_order, linear_charges
from shared.domain.contracts import DomainEvent
from shared.domain.engine import DEFAULT_CONFIG, liquidity_measure
from shared.domain.execution import ExecutionReport
from shared.domain.models import (
    BrokerageRule,
    Exchange,
    FeeSchedule,
    Product,
    RoutingObjective,
    Side,
)
from shared.services.schemas import SmartOrderRequest
from shared.settings import Settings
from shared.wiring import Wiring, utc_now

ORDERS = int(os.environ.get("QUALITY_ORDERS", "250"))
CHANGE_AT = ORDERS * 2 // 5
"""The order before which a scenario's change happens (100 of 250)."""
RECOVER_AT = ORDERS * 3 // 5
"""The order before which a broker that went down comes back (150 of 250)."""
LEARNED_AFTER = 50
"""Orders at the end of a run that count as "after learning"."""
WINDOW = 10
"""Orders in a flow-share window."""
OBSERVATIONS = 100
"""Children a broker has received when its learned profile is compared with the truth."""
PROBE_EVERY = 10
"""Orders between two runs of the health probe: the market refresh's statistics job probes the
brokers in an outage once a minute, and the simulated trader sends an order every 6 seconds."""
SYMBOL = "RELIANCE"
PRICE = float(seed.SYMBOLS[SYMBOL][0])
ORDER_SEED = 14
EXPLORATION_SEED = 16
USER = "quality-trader"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "quality"

MISS_BPS = DEFAULT_CONFIG.non_fill_penalty_bps
"""Cost of a share that does not execute at the broker it was sent to (rejected, timed out or
the cancelled rest of a partial fill): the engine's own non-fill price, 50 bps of notional."""
TIME_BPS_PER_S = 1.0
"""Value of waiting: 1 bps of notional per second (a 150 bps daily sigma over a 22,500 s
session is 1 bps per sqrt-second)."""
TIMEOUT_S = float(Settings.model_fields["broker_timeout_ms"].default) / 1000
PARTIAL_FRACTIONS = tuple(0.3 + 0.6 * (i + 0.5) / 12 for i in range(12))
"""Midpoints of 12 equal bins of the paper broker's partial-fill fraction, uniform on 0.3-0.9."""


def _market_terms() -> tuple[float, float, float]:
    """Half the symbol's seeded spread, its daily sigma and the engine's liquidity measure."""
    seeded = [p for p in seed.seed_profiles(utc_now()) if p.symbol == SYMBOL]
    half_spread = statistics.median(p.current_spread_bps for p in seeded) / 2
    sigma = max(p.volatility_bps for p in seeded)
    liquidity = max(liquidity_measure(p, DEFAULT_CONFIG) for p in seeded)
    return half_spread, sigma, liquidity


HALF_SPREAD_BPS, SIGMA_BPS, LIQUIDITY = _market_terms()
STATUTORY_PER_INR = linear_charges(Product.MIS, Side.BUY, Exchange.NSE).per_inr


def shared_cost(quantity: int, price: float = PRICE) -> float:
    """What every plan of an order pays whichever broker it goes to, in INR.

    Statutory charges (STT, exchange, SEBI, stamp duty, GST on them), half the quoted spread and
    the exchange's square-root impact of the whole order (the engine's own law and coefficient,
    on the seeded market figures): added to both sides of the **all-in** ratio, next to the
    broker-dependent one.
    """
    notional = quantity * price
    impact_bps = DEFAULT_CONFIG.impact_coefficient * SIGMA_BPS * math.sqrt(quantity / LIQUIDITY)
    return notional * (STATUTORY_PER_INR + (HALF_SPREAD_BPS + impact_bps) / 10_000)


DISCOUNT = BrokerageRule(rate_pct=Decimal("0.03"), cap_inr=Decimal(20))
FREE = BrokerageRule()
FLAT_20 = BrokerageRule(min_inr=Decimal(20), cap_inr=Decimal(20))


@dataclass(frozen=True)
class Truth:
    """One paper broker's hidden behaviour and its (public) intraday brokerage."""

    brokerage: BrokerageRule
    behaviour: dict[str, float]

    def paper(self) -> PaperBehaviour:
        """The behaviour as the paper broker reads it."""
        return PaperBehaviour.model_validate(self.behaviour)

    def changed(self, **behaviour: float) -> Truth:
        """This truth with some behaviour replaced."""
        return Truth(self.brokerage, {**self.behaviour, **behaviour})


def _behaviour(
    *, reject: float, partial: float, slip: float, ack: float, timeout: float = 0.0
) -> dict[str, float]:
    return {
        "rejectRate": reject,
        "timeoutRate": timeout,
        "partialFillRate": partial,
        "slippageBpsMean": slip,
        "slippageBpsStd": max(0.3, slip / 2),
        "ackLatencyMs": ack,
        "ackJitterMs": ack / 5,
        "fillLatencyMs": 3 * ack,
    }


FLEET: dict[str, Truth] = {
    # cheap (no brokerage) but rejects one order in five
    "zerodha": Truth(FREE, _behaviour(reject=0.20, partial=0.03, slip=0.8, ack=35)),
    # slips 6 bps
    "upstox": Truth(DISCOUNT, _behaviour(reject=0.01, partial=0.03, slip=6.0, ack=55)),
    # slow: 400 ms to acknowledge
    "dhan": Truth(DISCOUNT, _behaviour(reject=0.02, partial=0.04, slip=1.0, ack=400)),
    # fills 35 % of its children only in part
    "fyers": Truth(DISCOUNT, _behaviour(reject=0.015, partial=0.35, slip=1.0, ack=30)),
    # good, but a flat INR 20 an order
    "angelone": Truth(FLAT_20, _behaviour(reject=0.005, partial=0.02, slip=0.5, ack=40)),
}
NEWCOMER = "groww"
NEWCOMER_TRUTH = Truth(FREE, _behaviour(reject=0.005, partial=0.02, slip=0.3, ack=30))
"""The broker that joins in the last scenario: better than every other on every count."""


def expected_cost(truth: Truth, quantity: int, price: float = PRICE) -> float:
    """Expected cost in INR of sending ``quantity`` shares to a broker with this truth.

    Closed form over the paper broker's outcomes: a timeout (drawn, or an acknowledgement later
    than the placement timeout) pays the non-fill price and the wait; a reject the non-fill
    price and the acknowledgement; a fill its slippage, brokerage and acknowledgement; a partial
    fill that on the filled part and the non-fill price on the cancelled rest (fraction averaged
    over 12 bins). What every broker shares (statutory charges, the spread, the exchange's
    impact) is left out: it is the same for every plan of an order and would only dilute ratios.
    """
    b = truth.paper()
    notional = quantity * price
    late = 1 - statistics.NormalDist(b.ack_latency_ms, max(b.ack_jitter_ms, 1e-9)).cdf(
        TIMEOUT_S * 1000
    )
    p_timeout = b.timeout_rate + (1 - b.timeout_rate) * late
    p_reject = min(b.reject_rate, 1 - b.timeout_rate) * (1 - late)
    p_ok = max(0.0, 1 - p_timeout - p_reject)
    ack_cost = notional * (b.ack_latency_ms / 1000) * TIME_BPS_PER_S / 10_000

    def executed(fraction: float) -> float:
        filled = notional * fraction
        fee = float(brokerage_per_order(truth.brokerage, Decimal(str(round(filled, 2)))))
        return fee + filled * b.slippage_bps_mean / 10_000 + (notional - filled) * MISS_BPS / 10_000

    partial = statistics.fmean(executed(f) for f in PARTIAL_FRACTIONS)
    filled = (1 - b.partial_fill_rate) * executed(1.0) + b.partial_fill_rate * partial
    return (
        p_timeout * notional * (MISS_BPS + TIMEOUT_S * TIME_BPS_PER_S) / 10_000
        + p_reject * (notional * MISS_BPS / 10_000 + ack_cost)
        + p_ok * (filled + ack_cost)
    )


@dataclass(frozen=True)
class Scenario:
    """One run: its name, what changes, and whether the favourite goes down and comes back."""

    name: str
    description: str
    degrade: Callable[[Truth], Truth] | None = None
    recover: bool = False
    joins: bool = False


SCENARIOS = (
    Scenario("steady", "the truth never changes"),
    Scenario(
        "slippage_rises",
        "the favourite's slippage rises by 20 bps",
        lambda t: t.changed(slippageBpsMean=t.behaviour["slippageBpsMean"] + 20),
    ),
    Scenario(
        "rejects_60pct",
        "the favourite rejects 60 % of its children",
        lambda t: t.changed(rejectRate=0.6),
    ),
    Scenario(
        "timeouts_30pct",
        "30 % of the favourite's children time out",
        lambda t: t.changed(timeoutRate=0.3),
    ),
    Scenario(
        "ack_latency_x10",
        "the favourite takes 10x as long to acknowledge",
        lambda t: t.changed(
            ackLatencyMs=t.behaviour["ackLatencyMs"] * 10,
            ackJitterMs=t.behaviour["ackJitterMs"] * 10,
        ),
    ),
    Scenario(
        "down_and_back",
        f"the favourite is down (every child times out) from order {CHANGE_AT + 1} "
        f"to {RECOVER_AT}, then as before",
        lambda t: t.changed(timeoutRate=1.0),
        recover=True,
    ),
    Scenario(
        "new_broker_joins",
        f"{NEWCOMER}, better than every broker, joins before order {CHANGE_AT + 1}",
        joins=True,
    ),
)


class CollectingPublisher:
    """The bus: keeps every event so the run can hand the execution reports to the tracker."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        self.events.extend(events)
        return []

    def drain(self) -> list[DomainEvent]:
        events, self.events = self.events, []
        return events


@dataclass
class Order:
    """One order of a run: its plans' costs under the truth and the router's shares."""

    quantity: int
    router: float
    oracle: float
    shared: float
    """What every plan of the order pays (:func:`shared_cost`), for the all-in ratios."""
    round_robin: float
    lowest_brokerage: float
    by_broker: dict[str, float]
    router_share: dict[str, float]
    oracle_broker: str


@dataclass
class Run:
    """A scenario's orders and what was learned."""

    scenario: Scenario
    orders: list[Order] = field(default_factory=list)
    subject: str | None = None
    learned: dict[str, dict[str, Any]] = field(default_factory=dict)
    cascades: int = 0
    probes: list[dict[str, Any]] = field(default_factory=list)
    """Health probes that found a broker in an outage: the order before which, and what."""


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """Postgres (admin URL) and Redis (URL), from the environment or started for the run."""
    with contextlib.ExitStack() as stack:
        admin_url = os.environ.get("DATABASE_URL")
        if not admin_url:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-quality-"))
            pg = EmbeddedPostgres(Path(tmp) / "pg").start()
            stack.callback(pg.stop)
            admin_url = pg.admin_url
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            rd = EmbeddedRedis().start()
            stack.callback(rd.stop)
            redis_url = rd.url
        yield admin_url, redis_url


def broker_config(broker_id: str, truth: Truth) -> BrokerConfig:
    """A paper broker with this truth, its fees public and its rate limit out of the way."""
    return BrokerConfig(
        broker_id=broker_id,
        display_name=broker_id.title(),
        adapter="paper",
        adapter_config=truth.behaviour,
        webhook_auth=WebhookAuth.HMAC,
        webhook_secret_ref=f"{broker_id}/webhook",
        fee_schedule=FeeSchedule(intraday=truth.brokerage),
        # 250 orders in seconds would hit real per-second limits, which are tested elsewhere.
        rate_limit_per_s=1_000_000,
        freeze_quantity=25_000,
    )


def seed_fleet(wiring: Wiring) -> None:
    """The brokers with their truth, and the seeded profiles: close to the seed's, not the truth."""
    now = utc_now()
    for broker_id, truth in FLEET.items():
        wiring.brokers.upsert(broker_config(broker_id, truth))
    for profile in seed.seed_profiles(now):
        if profile.symbol == SYMBOL:
            wiring.profile_repository.upsert(
                profile.model_copy(
                    update={
                        "fee_schedule": FeeSchedule(intraday=FLEET[profile.broker_id].brokerage),
                        "rate_limit_per_s": 1_000_000,
                        "freeze_quantity": 25_000,
                    }
                )
            )
    for instrument in seed.seed_instruments(now):
        wiring.instruments.upsert(instrument)


def join_newcomer(wiring: Wiring) -> None:
    """Add the new broker with a neutral prior: the seeded profiles' average, as if new."""
    wiring.brokers.upsert(broker_config(NEWCOMER, NEWCOMER_TRUTH))
    priors = wiring.profile_repository.list_for_symbol(SYMBOL)
    template = next(p for p in seed.seed_profiles(utc_now()) if p.symbol == SYMBOL)
    wiring.profile_repository.upsert(
        template.model_copy(
            update={
                "broker_id": NEWCOMER,
                "avg_execution_time_ms": statistics.fmean(p.avg_execution_time_ms for p in priors),
                "fill_rate_percentage": statistics.fmean(p.fill_rate_percentage for p in priors),
                "slippage_bps": statistics.fmean(p.slippage_bps for p in priors),
                "response_time_ms": statistics.fmean(p.response_time_ms for p in priors),
                "error_rate_percentage": statistics.fmean(p.error_rate_percentage for p in priors),
                "sample_count": 0,
                "fee_schedule": FeeSchedule(intraday=NEWCOMER_TRUTH.brokerage),
                "rate_limit_per_s": 1_000_000,
                "freeze_quantity": 25_000,
                "last_updated": utc_now(),
            }
        )
    )


def quantities(count: int) -> list[int]:
    """Order sizes, log-uniform from 5 to 2,000 shares (INR 6.5 k to 2.6 M)."""
    rng = random.Random(ORDER_SEED)
    return [round(math.exp(rng.uniform(math.log(5), math.log(2_000)))) for _ in range(count)]


def run(scenario: Scenario, admin_url: str, redis_url: str) -> Run:
    """Send the orders of one scenario through the router; value every plan under the truth."""
    result = Run(scenario)
    truth = dict(FLEET)
    with scratch_database(admin_url, "router_quality") as database_url:
        apply_migrations(database_url)
        settings = Settings(
            stage="test",
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=f"quality:{uuid.uuid4().hex[:8]}:",
            enforce_market_hours=False,
            risk_max_open_orders=10_000_000,
            # The exploration draws are replayed too: two runs give the same figures.
            exploration_seed=EXPLORATION_SEED,
        )
        publisher = CollectingPublisher()
        wiring = Wiring(settings, publisher=publisher)
        seed_fleet(wiring)
        observed: dict[str, int] = dict.fromkeys([*FLEET, NEWCOMER], 0)
        for i, quantity in enumerate(quantities(ORDERS)):
            if i == CHANGE_AT:
                wiring = apply_change(
                    scenario,
                    wiring=wiring,
                    settings=settings,
                    publisher=publisher,
                    truth=truth,
                    result=result,
                )
            if i == RECOVER_AT and scenario.recover and result.subject is not None:
                truth[result.subject] = FLEET[result.subject]
                wiring.brokers.upsert(broker_config(result.subject, FLEET[result.subject]))
                wiring.gateway.reload(result.subject)
            if i % PROBE_EVERY == 0:
                probed = wiring.health_probe.run()
                if probed.recovered or probed.down or probed.unknown:
                    result.probes.append({"before_order": i + 1, **probed.as_dict()})
            request = SmartOrderRequest(
                symbol=SYMBOL,
                side=Side.BUY,
                quantity=quantity,
                routing_objective=RoutingObjective.SMART_BALANCE,
                product=Product.MIS,
            )
            outcome = wiring.routing.submit(request, user_id=USER, key=f"q-{i}")
            for event in publisher.drain():
                if event.detail_type == "ExecutionReported":
                    wiring.tracker.track(ExecutionReport.model_validate(event.detail["report"]))
            plan: dict[str, int] = {}
            for allocation in outcome.result.allocations:
                observed[allocation.broker_id] += max(1, len(allocation.child_order_ids))
                if allocation.cascaded_from is None:
                    plan[allocation.broker_id] = plan.get(allocation.broker_id, 0) + (
                        allocation.quantity
                    )
            result.cascades += outcome.cascades
            result.orders.append(value(truth, quantity, plan, i))
            for broker_id, count in observed.items():
                if count >= OBSERVATIONS and broker_id not in result.learned:
                    result.learned[broker_id] = learned_vs_true(wiring, broker_id, truth, count)
    return result


def apply_change(
    scenario: Scenario,
    *,
    wiring: Wiring,
    settings: Settings,
    publisher: CollectingPublisher,
    truth: dict[str, Truth],
    result: Run,
) -> Wiring:
    """Change the truth before order ``CHANGE_AT``; return the wiring to go on with."""
    recent = result.orders[-50:]
    shares = {b: sum(o.router_share.get(b, 0) * o.quantity for o in recent) for b in FLEET}
    result.subject = max(shares, key=lambda b: shares[b])
    if scenario.degrade is not None:
        truth[result.subject] = scenario.degrade(truth[result.subject])
        wiring.brokers.upsert(broker_config(result.subject, truth[result.subject]))
        wiring.gateway.reload(result.subject)
    if scenario.joins:
        result.subject = NEWCOMER
        truth[NEWCOMER] = NEWCOMER_TRUTH
        join_newcomer(wiring)
        # A running container sees a new broker once its broker list expires (60 s); the
        # simulation sends orders faster than that, so it goes on in a new container.
        wiring = Wiring(settings, publisher=publisher)
        wiring.profiles.refresh(SYMBOL)
    return wiring


def value(truth: dict[str, Truth], quantity: int, plan: dict[str, int], i: int) -> Order:
    """Cost of the router's plan and of every policy's for one order, under the truth."""
    present = [b for b in [*FLEET, NEWCOMER] if b in truth]
    by_broker = {b: expected_cost(truth[b], quantity) for b in present}
    # The cost is a sum of per-broker terms, each concave in its quantity (brokerage is flat or
    # capped, the rest linear), so the cheapest plan is a single broker: the oracle's.
    oracle_broker = min(by_broker, key=lambda b: by_broker[b])
    notional = Decimal(str(quantity * PRICE))
    cheapest = min(
        present, key=lambda b: (brokerage_per_order(truth[b].brokerage, notional), by_broker[b])
    )
    return Order(
        quantity=quantity,
        router=sum(expected_cost(truth[b], q) for b, q in plan.items()),
        oracle=by_broker[oracle_broker],
        shared=shared_cost(quantity),
        round_robin=by_broker[present[i % len(present)]],
        lowest_brokerage=by_broker[cheapest],
        by_broker=by_broker,
        router_share={b: q / quantity for b, q in plan.items()},
        oracle_broker=oracle_broker,
    )


def learned_vs_true(
    wiring: Wiring, broker_id: str, truth: dict[str, Truth], observations: int
) -> dict[str, Any]:
    """The broker's learned slippage and error rate against the truth of the moment."""
    profile = wiring.profile_repository.get(broker_id, SYMBOL)
    b = truth[broker_id].paper()
    true_errors = (b.reject_rate + b.timeout_rate) * 100
    learned_slip = profile.slippage_bps if profile else None
    learned_err = profile.error_rate_percentage if profile else None
    return {
        "observations": observations,
        "sample_count": profile.sample_count if profile else None,
        "slippage_bps": {
            "learned": _round(learned_slip),
            "true": b.slippage_bps_mean,
            "relative_error": _relative(learned_slip, b.slippage_bps_mean),
        },
        "reject_rate_pct": {
            "learned": _round(learned_err),
            "true": round(true_errors, 3),
            "relative_error": _relative(learned_err, true_errors),
        },
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _relative(learned: float | None, true: float) -> float | None:
    if learned is None or true == 0:
        return None
    return round(abs(learned - true) / true, 3)


def share(orders: Sequence[Order], broker_id: str, who: str = "router") -> float:
    """Quantity share of ``broker_id`` over ``orders`` for the router or the oracle."""
    total = sum(o.quantity for o in orders)
    if who == "router":
        mine = sum(o.router_share.get(broker_id, 0) * o.quantity for o in orders)
    else:
        mine = sum(o.quantity for o in orders if o.oracle_broker == broker_id)
    return mine / total if total else 0.0


def first_window(
    orders: Sequence[Order], start: int, broker_id: str, test: Callable[[float], bool]
) -> int | None:
    """Orders after ``start`` until the next :data:`WINDOW` orders' share passes ``test``."""
    for k in range(len(orders) - start - WINDOW + 1):
        if test(share(orders[start + k : start + k + WINDOW], broker_id)):
            return k
    return None


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def all_in(orders: Sequence[Order]) -> dict[str, float | None]:
    """Router / oracle with what every plan pays added to both (statutory, spread, impact)."""

    def over(part: Sequence[Order]) -> float | None:
        shared = sum(o.shared for o in part)
        return ratio(sum(o.router for o in part) + shared, sum(o.oracle for o in part) + shared)

    return {
        "router_vs_oracle": over(orders),
        "router_vs_oracle_first_50": over(orders[:50]),
        "router_vs_oracle_after_learning": over(orders[-LEARNED_AFTER:]),
        "shared_cost_inr": round(sum(o.shared for o in orders), 2),
    }


def summarise(run_: Run) -> dict[str, Any]:
    """The figures of one scenario (``docs/quality.md`` defines each)."""
    orders, subject, scenario = run_.orders, run_.subject, run_.scenario
    total = {k: sum(getattr(o, k) for o in orders) for k in ("router", "oracle", "round_robin")}
    lowest = sum(o.lowest_brokerage for o in orders)
    static = {b: sum(o.by_broker[b] for o in orders) for b in FLEET}
    best_static = min(static, key=lambda b: static[b])
    late = orders[-LEARNED_AFTER:]
    out: dict[str, Any] = {
        "description": scenario.description,
        "orders": len(orders),
        "cost_inr": {
            "router": round(total["router"], 2),
            "oracle": round(total["oracle"], 2),
            "round_robin": round(total["round_robin"], 2),
            "lowest_brokerage": round(lowest, 2),
            "best_static": round(static[best_static], 2),
        },
        "best_static_broker": best_static,
        "router_vs_oracle": ratio(total["router"], total["oracle"]),
        "router_vs_oracle_first_50": ratio(
            sum(o.router for o in orders[:50]), sum(o.oracle for o in orders[:50])
        ),
        "router_vs_oracle_after_learning": ratio(
            sum(o.router for o in late), sum(o.oracle for o in late)
        ),
        "all_in": all_in(orders),
        "router_vs_round_robin": ratio(total["router"], total["round_robin"]),
        "router_vs_lowest_brokerage": ratio(total["router"], lowest),
        "router_vs_best_static": ratio(total["router"], static[best_static]),
        "oracle_vs_round_robin": ratio(total["oracle"], total["round_robin"]),
        "router_flow_share": {
            b: round(share(orders, b), 3) for b in [*FLEET, NEWCOMER] if share(orders, b)
        },
        "oracle_flow_share": {
            b: round(share(orders, b, "oracle"), 3)
            for b in [*FLEET, NEWCOMER]
            if share(orders, b, "oracle")
        },
        "cascades": run_.cascades,
        "health_probes": run_.probes,
        "learned_vs_true_after_100_observations": run_.learned,
    }
    if subject is not None:
        before = orders[CHANGE_AT - 50 : CHANGE_AT]
        after = orders[CHANGE_AT:]
        out["subject_broker"] = subject
        out["subject_share"] = {
            "router_before_change": round(share(before, subject), 3),
            "router_after_change": round(share(after, subject), 3),
            "oracle_before_change": round(share(before, subject, "oracle"), 3),
            "oracle_after_change": round(share(after, subject, "oracle"), 3),
            "router_by_window": [
                round(share(orders[k : k + WINDOW], subject), 3)
                for k in range(0, len(orders), WINDOW)
            ],
        }
        if scenario.degrade is not None:
            out["orders_until_80pct_elsewhere"] = first_window(
                orders, CHANGE_AT, subject, lambda s: s <= 0.2
            )
        if scenario.recover:
            reference = share(before, subject)
            out["orders_until_recovered_regains_share"] = first_window(
                orders, RECOVER_AT, subject, lambda s: s >= 0.8 * reference
            )
        if scenario.joins:
            target = share(after, subject, "oracle")
            out["orders_until_newcomer_takes_share"] = first_window(
                orders, CHANGE_AT, subject, lambda s: s >= 0.8 * target
            )
    return out


def chart(run_: Run, path: Path) -> None:
    """Cost ratio and the subject broker's flow share over the orders, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    orders = run_.orders
    xs = list(range(1, len(orders) + 1))
    cumulative, router, oracle = [], 0.0, 0.0
    for o in orders:
        router, oracle = router + o.router, oracle + o.oracle
        cumulative.append(router / oracle)
    rolling = [
        sum(o.router for o in orders[max(0, k - 19) : k + 1])
        / sum(o.oracle for o in orders[max(0, k - 19) : k + 1])
        for k in range(len(orders))
    ]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(xs, cumulative, label="cumulative")
    top.plot(xs, rolling, label="last 20 orders", alpha=0.7)
    top.axhline(1.03, color="grey", linestyle="--", linewidth=0.8, label="target 1.03")
    top.set_ylabel("router cost / oracle cost")
    top.set_title(f"{run_.scenario.name}: {run_.scenario.description}", fontsize=9)
    top.legend(fontsize=8)
    subject = run_.subject or max(FLEET, key=lambda b: share(orders, b))
    shares = [share(orders[max(0, k - WINDOW + 1) : k + 1], subject) for k in range(len(orders))]
    oracle_shares = [
        share(orders[max(0, k - WINDOW + 1) : k + 1], subject, "oracle") for k in range(len(orders))
    ]
    bottom.plot(xs, shares, label=f"router's share to {subject}")
    bottom.plot(xs, oracle_shares, label=f"oracle's share to {subject}", alpha=0.7)
    if run_.scenario.degrade is not None or run_.scenario.joins:
        bottom.axvline(CHANGE_AT + 0.5, color="red", linewidth=0.8)
        if run_.scenario.recover:
            bottom.axvline(RECOVER_AT + 0.5, color="green", linewidth=0.8)
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_ylabel(f"flow share (last {WINDOW} orders)")
    bottom.set_xlabel("order")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


ESTIMATOR_RATES = (0.005, 0.02, 0.2, 0.6)
ESTIMATOR_RUNS = 1_000


def estimator_accuracy(
    rates: Sequence[float] = ESTIMATOR_RATES, runs: int = ESTIMATOR_RUNS, n: int = OBSERVATIONS
) -> dict[str, dict[str, float]]:
    """How close a learned error rate is to the truth after ``n`` outcomes, by estimator.

    Monte Carlo (``runs`` brokers per rate, day-one prior): the discounted posterior (what
    routing reacts with) against the steady one (undiscounted since the last change the CUSUM
    found, what the profile reports); per rate the median relative error, the share of runs
    within 10 %, and the binomial bound: the share within 10 % of the raw proportion of ``n``.
    """
    from shared.domain.execution import ProfileObservation
    from shared.domain.learning import DAY_ONE, DISCOUNT, Evidence, observe, rate_belief

    rng = random.Random(ORDER_SEED)
    yes, no = ProfileObservation(is_error=True), ProfileObservation(is_error=False)
    out: dict[str, dict[str, float]] = {}
    for rate in rates:
        errors: dict[str, list[float]] = {"discounted": [], "steady": [], "proportion": []}
        for _ in range(runs):
            evidence, events = Evidence(), 0
            for clock in range(1, n + 1):
                hit = rng.random() < rate
                events += hit
                evidence = observe(evidence, yes if hit else no, clock=clock, discount=DISCOUNT)
            steady = evidence.error_steady or evidence.error
            learned = {
                "discounted": rate_belief(DAY_ONE.error, evidence.error).mean,
                "steady": rate_belief(DAY_ONE.error, steady).mean,
                "proportion": events / n,
            }
            for name, value in learned.items():
                errors[name].append(abs(value - rate) / rate)
        out[f"{rate:.1%}"] = {
            **{f"{k}_median_error": round(statistics.median(v), 3) for k, v in errors.items()},
            **{
                f"{k}_within_10pct": round(sum(e <= 0.1 for e in v) / runs, 3)
                for k, v in errors.items()
            },
        }
    return out


def main() -> None:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    chosen = os.environ.get("QUALITY_SCENARIOS")
    scenarios = [s for s in SCENARIOS if not chosen or s.name in chosen.split(",")]
    results: dict[str, Any] = {
        "method": {
            "orders_per_scenario": ORDERS,
            "change_before_order": CHANGE_AT + 1,
            "recover_before_order": RECOVER_AT + 1,
            "valuation": "closed-form expected cost under the truth of the moment (INR)",
            "ratios": "router_vs_oracle*: broker-dependent cost only; all_in.*: with the "
            "statutory charges, half spread and impact every plan pays added to both",
            "miss_bps": MISS_BPS,
            "time_bps_per_s": TIME_BPS_PER_S,
            "placement_timeout_s": TIMEOUT_S,
            "symbol": SYMBOL,
            "objective": "SMART_BALANCE",
            "order_seed": ORDER_SEED,
            "exploration_seed": EXPLORATION_SEED,
            "paper_broker_seed": Settings.model_fields["paper_broker_seed"].default,
        },
        "truth": {
            b: {**t.behaviour, "brokerage": t.brokerage.model_dump(mode="json")}
            for b, t in {**FLEET, NEWCOMER: NEWCOMER_TRUTH}.items()
        },
        "scenarios": {},
    }
    with servers() as (admin_url, redis_url):
        for scenario in scenarios:
            run_ = run(scenario, admin_url, redis_url)
            results["scenarios"][scenario.name] = summarise(run_)
            chart(run_, DOCS / f"{scenario.name}.png")
    results["error_rate_estimators_after_100"] = estimator_accuracy()
    write_result("quality", results)


if __name__ == "__main__":
    main()
