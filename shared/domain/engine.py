"""The routing engine: score every broker, split the order at the objective's optimum, explain it.

Pure and deterministic: no I/O (apart from the charges module's one lazy read of its rates file),
no clock (``now`` comes in), no randomness of its own (exploration draws from a generator seeded
with the ``explore_seed`` it is given). Brokers are processed in broker-id order, so the order
of the list given never changes the decision. See ``docs/routing-engine.md`` for the formulas.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.allocation import BrokerCostModel, Optimum, Plan, optimise
from shared.domain.charges import (
    ContractNote,
    LinearCharges,
    compute_charges,
    linear_charges,
    sum_charges,
)
from shared.domain.eligibility import LOT_REASON_PREFIX, exclusion_reason, profile_age_s
from shared.domain.errors import InvalidOrderError, NoEligibleBrokerError
from shared.domain.learning import DISCOUNT, Draw, thompson_factors, widened
from shared.domain.models import (
    MAX_ORDER_VALUE_INR,
    BrokerageRule,
    BrokerProfile,
    BrokerStatus,
    OrderRequest,
    OrderType,
    Product,
    RoutingDecision,
    Side,
)
from shared.domain.scoring import (
    FactorScores,
    cost_score,
    freshness,
    liquidity_score,
    price_quality_score,
    reliability_score,
    speed_score,
)
from shared.domain.strategies import FactorWeights, OrderTraits, Valuation, get_strategy

_BPS = 1e-4
_PRICE_STEP = Decimal("0.0001")
_INR_STEP = Decimal("0.01")
_MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_LOSS_MARKET})
_LIMIT_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LOSS})
_WINDOW_S = 300.0
"""Seconds of the window ``recent_volume`` covers."""


class EngineConfig(BaseModel):
    """Parameters of the routing engine (all have production defaults).

    Attributes
    ----------
    max_profile_age_s
        Profiles older than this are stale and their broker excluded.
    min_child_lots, min_child_pct
        A child of a split carries at least ``min_child_lots`` lots and ``min_child_pct`` % of
        the order, so no broker gets a useless sliver (a single-broker plan is exempt).
    non_fill_penalty_bps
        Cost of a share that does not fill, in bps of notional: re-routing it later pays the
        spread again and the price drifts meanwhile. Charged on ``(1 - p_fill) x q``.
    busy_fill_factor
        Multiplies a BUSY broker's fill probability.
    impact_coefficient
        ``Y`` of the square-root law ``I = Y sigma sqrt(Q / V)``.
    volume_windows_per_day
        ``recent_volume`` covers a 5-minute window; x 75 (a 375-minute session) projects it to
        a daily volume, the scale of the daily ``volatility_bps``; the session's seconds
        (75 x 300) scale the timing risk.
    child_order_cost_inr
        Fixed cost of one more child order (an API call against the rate limit, one more fill to
        reconcile, one more partial-fill risk). It is what keeps a small order on one broker.
    max_brokers
        Brokers per order when the order does not say.
    max_slices_per_broker
        Most slices (child orders) one broker may get for one order: caps its allocation at
        this many freeze quantities, and so the splitter's work.
    max_price_move_bps
        The most the expected price may move against the order: 20 %, NSE's widest daily price
        band, beyond which the exchange does not trade. Without it a huge sell against thin
        liquidity would expect a price at or below zero.
    confidence_sample_ref
        Sample count at which a profile's statistics count half.
    confidence_margin_ref
        Relative cost margin to the runner-up plan that counts fully towards confidence.
    evidence_discount
        Evidence kept per round of the symbol (the learning's discount): how fast a belief
        not refreshed widens for exploration.
    exploration_max_inr, exploration_max_bps
        The bound on exploration: an explored plan is used only if, valued at the posterior
        means, its objective exceeds the greedy optimum's by at most
        ``min(exploration_max_inr, exploration_max_bps x notional)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_profile_age_s: int = Field(default=86_400, gt=0)
    max_market_age_s: float | None = Field(default=None, gt=0)
    """Market figures older than this exclude a broker (``STALE_MARKET_DATA``); ``None``: no
    check. Set from ``ROUTER_MARKET_STATS_MAX_AGE_S`` (shared.domain.eligibility)."""
    min_child_lots: int = Field(default=1, ge=1)
    min_child_pct: float = Field(default=5.0, ge=0, le=50)
    non_fill_penalty_bps: float = Field(default=50.0, ge=0)
    busy_fill_factor: float = Field(default=0.8, ge=0, le=1)
    impact_coefficient: float = Field(default=1.0, ge=0)
    volume_windows_per_day: float = Field(default=75.0, gt=0)
    child_order_cost_inr: float = Field(default=10.0, ge=0)
    max_brokers: int = Field(default=4, ge=1, le=16)
    max_slices_per_broker: int = Field(default=40, ge=1, le=1_000)
    max_price_move_bps: float = Field(default=2_000.0, gt=0, lt=10_000)
    confidence_sample_ref: int = Field(default=20, ge=1)
    confidence_margin_ref: float = Field(default=0.02, gt=0)
    evidence_discount: float = Field(default=DISCOUNT, gt=0, le=1)
    exploration_max_inr: float = Field(default=10.0, ge=0)
    exploration_max_bps: float = Field(default=5.0, ge=0)


DEFAULT_CONFIG = EngineConfig()


@dataclass(slots=True)  # not frozen, like _Broker: frozen dataclasses build 3x slower
class _Terms:
    """What every broker's scores and cost model share for one order (computed once a call)."""

    quantity: int
    price: float
    lot: int
    product: Product
    pays_dp: bool
    statutory: LinearCharges
    weights: FactorWeights
    valuation: Valuation
    impact_bps: float
    """Square-root impact of the whole order on the exchange's book (the same for any split)."""
    sigma_bps: float
    """Daily volatility of the symbol: the largest the eligible brokers report."""
    split_floor: int
    """Smallest child of a split the order allows, in shares (whole lots)."""
    now: datetime
    cfg: EngineConfig


@dataclass(slots=True)  # not frozen: frozen dataclasses build 3x slower, and this is per broker
class _Broker:
    """What the engine derived for one broker."""

    profile: BrokerProfile
    factors: FactorScores
    score: float
    fill_probability: float
    freshness: float
    model: BrokerCostModel


def reference_price(order: OrderRequest, profiles: Sequence[BrokerProfile]) -> Decimal:
    """The price costs and slippage are measured against.

    In order: the quote's mid (bid/ask, else last), a one-sided quote, the limit price, the
    trigger price, and the median of the profiles' ``last_price`` (lower median, so it is one of
    the values). An order with none of these cannot be costed.

    Raises
    ------
    InvalidOrderError
        On field ``quote`` when no reference price exists.
    """
    quote = order.quote
    if quote is not None:
        for value in (quote.mid, quote.ask, quote.bid):
            if value is not None:
                return value
    for value in (order.limit_price, order.trigger_price):
        if value is not None:
            return value
    lasts = sorted(p.last_price for p in profiles if p.last_price is not None)
    if lasts:
        return Decimal(str(lasts[(len(lasts) - 1) // 2]))
    raise InvalidOrderError(
        "quote",
        "a reference price is needed: send a quote (bid/ask/last) or a limit price, "
        "or have a broker profile with a last price",
    )


def _check_order_value(order: OrderRequest, ref: Decimal) -> None:
    # Market orders have no price in the request: their value is only known here, against the
    # reference price; priced orders count their own price when it is the higher.
    price = max(p for p in (ref, order.limit_price, order.trigger_price) if p is not None)
    value = price * order.quantity
    if value > MAX_ORDER_VALUE_INR:
        raise InvalidOrderError(
            "quantity",
            f"order value INR {value:.2f} exceeds the limit of INR {MAX_ORDER_VALUE_INR:.0f}",
        )


def liquidity_measure(profile: BrokerProfile, config: EngineConfig) -> float:
    """``V = order_book_depth + recent_volume x volume_windows_per_day`` (shares).

    The square-root law wants the daily volume the order competes with; the recent window's
    volume projected to a day estimates it from what this broker sees, and the visible depth
    adds what can be taken immediately (and keeps ``V > 0`` for a broker that has depth only).
    """
    return profile.order_book_depth + profile.recent_volume * config.volume_windows_per_day


def _lcm(values: Sequence[int]) -> int:
    result = 1
    for v in values:
        result = result * v // math.gcd(result, v)
    return result


def fill_probability(profile: BrokerProfile, config: EngineConfig) -> float:
    """Probability that a share sent to the broker fills: ``fill_rate`` (x 0.8 when BUSY).

    ``fill_rate_percentage`` is the mean filled percentage of the broker's finished child
    orders, a rejected child counting 0 %; ``error_rate_percentage`` is the percentage of them
    rejected. A reject already lowers the fill rate, so multiplying by ``1 - error_rate`` would
    count it twice: the error rate only adds the time a cascade takes (see ``_seconds``).
    """
    p = profile.fill_rate_percentage / 100
    return p * (config.busy_fill_factor if profile.status is BrokerStatus.BUSY else 1.0)


def _seconds(profile: BrokerProfile, fill: float) -> tuple[float, float]:
    """Expected seconds to fill a child of one slice, and what each further slice adds.

    ``(t_exec + (1 - p_fill) (t_ack + t_exec)) / 1000`` for the first slice: a share that is
    rejected or does not fill is re-routed, which takes about one more acknowledgement and
    execution. Slices of one child are paced by the broker's rate limit (``1 / rate`` seconds),
    else by its acknowledgement time.
    """
    t_exec = profile.avg_execution_time_ms
    base = (t_exec + (1 - fill) * (profile.response_time_ms + t_exec)) / 1000
    if profile.rate_limit_per_s is not None:
        return base, 1 / profile.rate_limit_per_s
    return base, profile.response_time_ms / 1000


_RuleFloats = tuple[float, float, float | None]


@cache
def _rule_floats(rule: BrokerageRule) -> _RuleFloats:
    """``(rate per INR, minimum, cap)`` of a brokerage rule as floats (fee schedules repeat)."""
    cap = None if rule.cap_inr is None else float(rule.cap_inr)
    return float(rule.rate_pct) / 100, float(rule.min_inr), cap


def _own_charges(profile: BrokerProfile, terms: _Terms, rule: _RuleFloats, dp: float) -> float:
    rate, minimum, cap = rule
    slices = 1
    if profile.freeze_quantity is not None:
        slices = -(-terms.quantity // profile.freeze_quantity)
    per_order = max(rate * terms.price * terms.quantity / slices, minimum)
    if cap is not None:
        per_order = min(per_order, cap)
    return per_order * slices * terms.statutory.gst_factor + dp


def _build_model(
    profile: BrokerProfile,
    terms: _Terms,
    *,
    rank: int,
    rule: _RuleFloats,
    dp: float,
    fill: float,
    capacity: int,
) -> BrokerCostModel:
    cfg = terms.cfg
    value = terms.valuation
    price = terms.price
    lot = terms.lot
    q_total = terms.quantity
    market_bps = (
        profile.current_spread_bps / 2
        + profile.slippage_bps
        - profile.price_improvement_bps
        + (1 - fill) * cfg.non_fill_penalty_bps
    )
    linear = price * (value.market * market_bps * _BPS + value.charges * terms.statutory.per_inr)
    base, pace = _seconds(profile, fill)
    session_s = cfg.volume_windows_per_day * _WINDOW_S
    rate, minimum, cap = rule
    slice_shares = None
    if profile.freeze_quantity is not None:
        slice_shares = max(lot, profile.freeze_quantity // lot * lot)
    min_size = profile.min_order_size or lot
    lo_single = -(-min_size // lot) * lot
    hi = min(q_total, profile.max_order_size or q_total, capacity) // lot * lot
    return BrokerCostModel(
        broker_id=profile.broker_id,
        rank=rank,
        linear=linear,
        time_base=base,
        time_pace=pace,
        time_linear=price * value.time_bps_per_s * _BPS,
        time_sqrt=price * value.timing_risk_sd * terms.sigma_bps * _BPS / math.sqrt(session_s),
        fixed=dp * value.charges,
        child_cost=cfg.child_order_cost_inr,
        rate=rate,
        minimum=minimum,
        cap=cap,
        charge_factor=terms.statutory.gst_factor * value.charges,
        price=price,
        slice_shares=slice_shares,
        lo_single=lo_single,
        lo_split=max(lo_single, terms.split_floor),
        hi=hi,
    )


def _capacity(profile: BrokerProfile, recent_orders: int, lot: int, max_slices: int) -> int:
    """Shares the broker can take for this order: slices left x slice size.

    Slices left are the rate limit's remaining orders this second, at most ``max_slices``.
    """
    if profile.freeze_quantity is None:
        return 10**12
    slices = max_slices
    if profile.rate_limit_per_s is not None:
        slices = min(slices, profile.rate_limit_per_s - recent_orders)
    return slices * max(lot, profile.freeze_quantity // lot * lot)


def _traits(order: OrderRequest, profiles: Sequence[BrokerProfile]) -> OrderTraits:
    depth = max((p.order_book_depth for p in profiles), default=0)
    return OrderTraits(
        is_market=order.order_type in _MARKET_TYPES,
        is_limit=order.order_type in _LIMIT_TYPES,
        size_to_depth=order.quantity / depth if depth > 0 else math.inf,
    )


def _percentages(quantities: Sequence[int], total: int) -> list[Decimal]:
    """Percentages in hundredths summing to exactly 100 (largest remainder), each >= 0.01."""
    units = [q * 10_000 // total for q in quantities]
    rests = sorted(range(len(quantities)), key=lambda j: (-(quantities[j] * 10_000 % total), j))
    for j in rests[: 10_000 - sum(units)]:
        units[j] += 1
    for j, u in enumerate(units):
        if u == 0:
            units[j] = 1
            units[max(range(len(units)), key=lambda k: (units[k], -k))] -= 1
    return [(Decimal(u) / 100).quantize(_INR_STEP) for u in units]


def _to_price(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_PRICE_STEP)


def _to_inr(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_INR_STEP)


def _terms(
    order: OrderRequest,
    eligible: Sequence[BrokerProfile],
    *,
    price: float,
    lot: int,
    now: datetime,
    cfg: EngineConfig,
) -> _Terms:
    child_floor = max(cfg.min_child_lots * lot, math.ceil(order.quantity * cfg.min_child_pct / 100))
    strategy = get_strategy(order.routing_objective)
    # Every broker reaches the same exchange book: its liquidity is the deepest view of it, and
    # the order's impact depends on the whole quantity, however it is split.
    liquidity = max(1.0, *(liquidity_measure(p, cfg) for p in eligible))
    sigma = max(p.volatility_bps for p in eligible)
    return _Terms(
        quantity=order.quantity,
        price=price,
        lot=lot,
        product=order.product,
        pays_dp=order.product is Product.CNC and order.side is Side.SELL,
        statutory=linear_charges(order.product, order.side, order.exchange, now.date()),
        weights=strategy.weights(_traits(order, eligible)),
        valuation=strategy.valuation,
        impact_bps=cfg.impact_coefficient * sigma * math.sqrt(order.quantity / liquidity),
        sigma_bps=sigma,
        split_floor=-(-child_floor // lot) * lot,
        now=now,
        cfg=cfg,
    )


def _derive(profile: BrokerProfile, terms: _Terms, *, rank: int, capacity: int) -> _Broker:
    """Factor scores and cost model of one broker for the order."""
    cfg = terms.cfg
    fresh = freshness(profile, profile_age_s(profile, terms.now), cfg.max_profile_age_s)
    liquidity = max(liquidity_measure(profile, cfg), 1.0)
    rule = _rule_floats(profile.fee_schedule.rule_for(terms.product))
    dp = float(profile.fee_schedule.dp_charge_inr) if terms.pays_dp else 0.0
    factors = FactorScores(
        speed=speed_score(profile),
        price=price_quality_score(profile),
        reliability=reliability_score(profile, fresh),
        liquidity=liquidity_score(terms.quantity, liquidity),
        cost=cost_score(_own_charges(profile, terms, rule, dp), terms.price * terms.quantity),
    )
    total = factors.total(terms.weights)
    fill = fill_probability(profile, cfg)
    model = _build_model(profile, terms, rank=rank, rule=rule, dp=dp, fill=fill, capacity=capacity)
    return _Broker(profile, factors, total, fill, fresh, model)


@dataclass(slots=True)
class _Prepared:
    """One order's brokers, derived once: what decide_route optimises and evaluate_plan costs."""

    terms: _Terms
    every: list[_Broker]
    """Every broker, eligible or not, in broker-id order (the decision's broker scores)."""
    derived: list[_Broker]
    """The brokers that can take part of the order; ``model.rank`` is the index here."""
    reasons: dict[str, str]
    """Why each other broker was excluded."""


def _exclusions(
    order: OrderRequest,
    ordered: Sequence[BrokerProfile],
    *,
    now: datetime,
    cfg: EngineConfig,
    counts: Mapping[str, int],
    unavailable: Mapping[str, str],
) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for p in ordered:
        # The trader's access (a linked account, an adapter) comes first: without it nothing
        # else about the broker matters.
        reason = unavailable.get(p.broker_id) or exclusion_reason(
            order,
            p,
            now=now,
            max_profile_age_s=cfg.max_profile_age_s,
            recent_orders=counts.get(p.broker_id, 0),
            max_market_age_s=cfg.max_market_age_s,
        )
        if reason is not None:
            reasons[p.broker_id] = reason
    return reasons


def _common_lot(order: OrderRequest, eligible: Sequence[BrokerProfile]) -> int:
    lot = _lcm([p.lot_size for p in eligible])
    if order.quantity % lot:
        raise InvalidOrderError(
            "quantity", f"{order.quantity} is not a whole number of the brokers' lots of {lot}"
        )
    return lot


def _prepare(
    order: OrderRequest,
    profiles: Sequence[BrokerProfile],
    *,
    now: datetime,
    cfg: EngineConfig,
    counts: Mapping[str, int],
    unavailable: Mapping[str, str],
) -> _Prepared:
    """Eligibility, the order's terms and every broker's scores and cost model.

    Raises what :func:`decide_route` documents, except the optimiser's capacity error.
    """
    ordered = sorted(profiles, key=lambda p: p.broker_id)
    if len({p.broker_id for p in ordered}) != len(ordered):
        raise ValueError("profiles must have unique broker ids")
    reasons = _exclusions(order, ordered, now=now, cfg=cfg, counts=counts, unavailable=unavailable)
    eligible = [p for p in ordered if p.broker_id not in reasons]
    if not eligible:
        lot_reasons = [r for r in reasons.values() if r.startswith(LOT_REASON_PREFIX)]
        if lot_reasons:
            raise InvalidOrderError("quantity", f"{order.quantity}: {lot_reasons[0]}")
        raise NoEligibleBrokerError(reasons)
    ref = reference_price(order, ordered)
    _check_order_value(order, ref)
    lot = _common_lot(order, eligible)
    terms = _terms(order, eligible, price=float(ref), lot=lot, now=now, cfg=cfg)
    prepared = _Prepared(terms, [], [], reasons)
    for p in ordered:
        broker = _derive(
            p,
            terms,
            rank=len(prepared.derived),
            capacity=_capacity(p, counts.get(p.broker_id, 0), lot, cfg.max_slices_per_broker),
        )
        prepared.every.append(broker)
        if p.broker_id in reasons:
            continue
        model = broker.model
        if model.hi < model.lo_single and model.hi < model.lo_split:
            reasons[p.broker_id] = (
                f"cannot take a whole number of lots between its minimum "
                f"{model.lo_single} and maximum {model.hi}"
            )
            continue
        prepared.derived.append(broker)
    if not prepared.derived:
        raise NoEligibleBrokerError(reasons)
    return prepared


def decide_route(
    order: OrderRequest,
    profiles: Sequence[BrokerProfile],
    *,
    now: datetime,
    config: EngineConfig | None = None,
    recent_order_counts: Mapping[str, int] | None = None,
    explore_seed: int | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> RoutingDecision:
    """Route ``order``: which brokers get how many shares, what to expect, and why.

    Parameters
    ----------
    order
        The validated order.
    profiles
        Execution profiles of the candidate brokers for the order's symbol (any order; broker
        ids unique).
    now
        Current time (tz-aware), for profile staleness and the charges in force.
    config
        Engine parameters; defaults to :data:`DEFAULT_CONFIG`.
    recent_order_counts
        Orders sent to each broker in the last second, against its ``rate_limit_per_s``.
    explore_seed
        Seed of this decision's Thompson draw (:func:`explore`); ``None`` decides greedily on
        the posterior means. The same seed always gives the same decision.
    unavailable
        Brokers the trader cannot use whatever the order (no live linked account, no
        adapter: :func:`~shared.domain.eligibility.access_reasons`), with the reason.

    Returns
    -------
    RoutingDecision
        Allocations sorted by priority (1 = best score), eligible unallocated brokers best first
        as the cascade's fallback list, confidence, expected execution, and every broker's
        scores (with ``exclusion_reason`` for the excluded).

    Raises
    ------
    InvalidOrderError
        Field ``quantity`` when no broker's lot size divides it; field ``quote`` when there is
        no reference price.
    NoEligibleBrokerError
        When no broker (or no allowed combination of brokers) can take the order; ``reasons``
        names every broker's reason.
    ValueError
        Two profiles share a broker id.
    """
    cfg = config or DEFAULT_CONFIG
    prepared = _prepare(
        order,
        profiles,
        now=now,
        cfg=cfg,
        counts=recent_order_counts or {},
        unavailable=unavailable or {},
    )
    max_brokers = order.max_brokers or cfg.max_brokers
    optimum = optimise(
        [b.model for b in prepared.derived],
        order.quantity,
        prepared.terms.lot,
        max_brokers=max_brokers,
    )
    if optimum is None:
        capacity_reasons = dict(prepared.reasons)
        for b in prepared.derived:
            capacity_reasons[b.profile.broker_id] = (
                f"can take at most {b.model.hi} of {order.quantity} shares and no combination "
                f"of {max_brokers} broker(s) fills the order"
            )
        raise NoEligibleBrokerError(capacity_reasons)
    if explore_seed is not None:
        optimum = explore(order, prepared, optimum, max_brokers=max_brokers, seed=explore_seed)
    return _decision(order, prepared, optimum)


def exploration_bound(prepared_price: float, quantity: int, cfg: EngineConfig) -> float:
    """Most an explored plan may cost over the greedy optimum, in objective INR."""
    notional = prepared_price * quantity
    return min(cfg.exploration_max_inr, cfg.exploration_max_bps * _BPS * notional)


def explore(
    order: OrderRequest, prepared: _Prepared, greedy: Optimum, *, max_brokers: int, seed: int
) -> Optimum:
    """Thompson sampling within a bounded cost.

    Every eligible broker's learned factors are drawn once from their posteriors (widened by
    the rounds since each last learned), and the broker whose drawn cost model takes the whole
    order cheapest is the candidate (a single broker: exploring a split would cost a second
    full search, and a split of a drawn plan is rarely within the bound anyway). The candidate
    is valued with its posterior-mean cost model and replaces the greedy optimum only if it
    costs at most :func:`exploration_bound` more; otherwise the greedy plan stands.
    ``max_brokers`` is kept for the signature's symmetry with the splitter.
    """
    del max_brokers
    terms = prepared.terms
    quantity = order.quantity
    clock = sum(b.profile.sample_count for b in prepared.every)
    rng = random.Random(seed)  # noqa: S311 -- exploration draws, not secrets
    cfg = terms.cfg
    best: tuple[float, int] | None = None
    for b in prepared.derived:
        drawn = thompson_factors(b.profile, rng, clock=clock, discount=cfg.evidence_discount)
        model = b.model
        if not model.lo_single <= quantity <= model.hi:
            continue
        cost = _drawn_model(b, drawn, terms).cost(quantity)
        if best is None or cost < best[0]:
            best = (cost, model.rank)
    if best is None:
        return greedy
    rank = best[1]
    plan = ((rank, quantity),)
    if plan == greedy.best.quantities:
        return greedy
    cost = prepared.derived[rank].model.cost(quantity)
    if cost - greedy.best.cost > exploration_bound(terms.price, quantity, cfg):
        return greedy
    return Optimum(
        best=Plan(quantities=plan, cost=cost),
        runner_up_cost=min(greedy.best.cost, greedy.runner_up_cost),
        states=greedy.states,
        gap_bound=greedy.gap_bound,
    )


def _drawn_model(broker: _Broker, drawn: Draw, terms: _Terms) -> BrokerCostModel:
    """The broker's cost model with its learned factors replaced by a draw.

    Only the terms the learned factors enter change: ``linear`` (slippage, improvement and the
    non-fill penalty) and ``time_base`` (the times and the fill probability); everything else
    (fees, sizes, the value of time) is the mean model's, so no scores are derived again.
    """
    p = broker.profile
    cfg = terms.cfg
    busy = cfg.busy_fill_factor if p.status is BrokerStatus.BUSY else 1.0
    fill = drawn.fill_rate_percentage / 100 * busy
    shift_bps = (
        drawn.slippage_bps
        - p.slippage_bps
        - (drawn.price_improvement_bps - p.price_improvement_bps)
        + (broker.fill_probability - fill) * cfg.non_fill_penalty_bps
    )
    model = broker.model
    t_exec = drawn.avg_execution_time_ms
    return replace(
        model,
        linear=model.linear + terms.price * terms.valuation.market * shift_bps * _BPS,
        time_base=(t_exec + (1 - fill) * (drawn.response_time_ms + t_exec)) / 1000,
    )


@dataclass(slots=True)
class _Priced:
    """One allocated broker's child: its expected price, charges and expected money cost."""

    row: dict[str, object]
    note: ContractNote
    cost: float
    value: float


def _price_child(
    order: OrderRequest, terms: _Terms, broker: _Broker, shares: int, *, priority: int
) -> _Priced:
    """Expected execution price, contract note and all-in expected cost of one child.

    Every child pays the whole order's impact per share: the book moves with the total.
    """
    cfg = terms.cfg
    p = broker.profile
    sign = order.side.sign
    impact_bps = terms.impact_bps
    drift_bps = p.current_spread_bps / 2 + p.slippage_bps - p.price_improvement_bps
    move_bps = min(drift_bps + impact_bps, cfg.max_price_move_bps)
    expected = terms.price * (1 + sign * move_bps * _BPS)
    if order.limit_price is not None:
        limit = float(order.limit_price)
        expected = min(expected, limit) if sign > 0 else max(expected, limit)
    expected_dec = _to_price(expected)
    slices = broker.model.children(shares)
    note = compute_charges(
        side=order.side,
        product=order.product,
        quantity=shares,
        price=expected_dec,
        fee_schedule=p.fee_schedule,
        exchange=order.exchange,
        orders=slices,
        on=terms.now.date(),
    )
    market_bps = move_bps + (1 - broker.fill_probability) * cfg.non_fill_penalty_bps
    cost = float(sum(note)) + shares * terms.price * market_bps * _BPS
    row: dict[str, object] = {
        "broker_id": p.broker_id,
        "quantity": shares,
        "expected_execution_price": expected_dec,
        "priority": priority,
        "slices": slices,
        "expected_cost_inr": _to_inr(cost),
    }
    return _Priced(row, note, cost, shares * float(expected_dec))


def _broker_score_rows(prepared: _Prepared) -> list[dict[str, object]]:
    return [
        {
            "broker_id": b.profile.broker_id,
            "execution_speed_score": b.factors.speed,
            "price_quality_score": b.factors.price,
            "reliability_score": b.factors.reliability,
            "liquidity_score": b.factors.liquidity,
            "cost_score": b.factors.cost,
            "total_score": b.score,
            "exclusion_reason": prepared.reasons.get(b.profile.broker_id),
        }
        for b in prepared.every
    ]


def _decision(order: OrderRequest, prepared: _Prepared, optimum: Optimum) -> RoutingDecision:
    terms = prepared.terms
    chosen = [(prepared.derived[rank], shares) for rank, shares in optimum.best.quantities]
    chosen.sort(key=lambda item: (-item[0].score, item[0].profile.broker_id))
    percentages = _percentages([s for _, s in chosen], order.quantity)
    priced = [
        _price_child(order, terms, b, shares, priority=priority)
        for priority, (b, shares) in enumerate(chosen, 1)
    ]
    for child, pct in zip(priced, percentages, strict=True):
        child.row["allocation_percentage"] = pct
    avg_price = sum(c.value for c in priced) / order.quantity
    allocated = {b.profile.broker_id for b, _ in chosen}
    fallback = sorted(
        (b for b in prepared.derived if b.profile.broker_id not in allocated),
        key=lambda b: (-b.score, b.profile.broker_id),
    )
    # The output models are validated in one call from plain data: pydantic-core builds the
    # nested models faster than one Python constructor call per model.
    return RoutingDecision.model_validate(
        {
            "order_id": order.order_id,
            "strategy": order.routing_objective,
            "allocations": [c.row for c in priced],
            "fallback_broker_ids": [b.profile.broker_id for b in fallback],
            "confidence_score": _confidence(chosen, optimum, terms.cfg, prepared.every),
            "expected_execution": {
                "price": _to_price(avg_price),
                "slippage_bps": round(
                    order.side.sign * (avg_price - terms.price) / terms.price * 10_000, 4
                ),
                "time_ms": 1000 * max(b.model.seconds(b.model.children(s)) for b, s in chosen),
                "fill_probability": min(
                    1.0, sum(s * b.fill_probability for b, s in chosen) / order.quantity
                ),
                "charges": sum_charges([c.note for c in priced]),
                "total_cost_inr": _to_inr(sum(c.cost for c in priced)),
                "objective_inr": _to_inr(optimum.best.cost + _impact_value(terms)),
            },
            "broker_scores": _broker_score_rows(prepared),
        }
    )


def _impact_value(terms: _Terms) -> float:
    """The order's impact (INR) as its objective values it: the same for every split."""
    return terms.valuation.market * terms.quantity * terms.price * terms.impact_bps * _BPS


def _evidence_weight(profile: BrokerProfile, clock: int, cfg: EngineConfig) -> float:
    """Observations' worth behind a profile, for confidence.

    Its sample count, or with beliefs the smaller of its fill and error beliefs' weights,
    widened by the rounds since it last learned.
    """
    u = profile.uncertainty
    if u is None:
        return float(profile.sample_count)
    rounds = clock - u.clock
    return min(
        widened(u.fill_rate, rounds, cfg.evidence_discount).weight,
        widened(u.error_rate, rounds, cfg.evidence_discount).weight,
    )


def _confidence(
    chosen: Sequence[tuple[_Broker, int]],
    optimum: Optimum,
    cfg: EngineConfig,
    every: Sequence[_Broker],
) -> float:
    """``data x (0.75 + 0.25 margin)``, see :func:`confidence_score`."""
    total = sum(shares for _, shares in chosen)
    clock = sum(b.profile.sample_count for b in every)
    data = 0.0
    for b, shares in chosen:
        p = b.profile
        n = _evidence_weight(p, clock, cfg)
        samples = n / (n + cfg.confidence_sample_ref)
        data += shares / total * b.freshness * samples * (1 - p.error_rate_percentage / 100)
    return confidence_score(data, optimum.best.cost, optimum.runner_up_cost, cfg)


def confidence_score(data: float, best: float, runner_up: float, cfg: EngineConfig) -> float:
    """Confidence in [0, 1]: how much the decision can be trusted.

    ``confidence = data x (0.75 + 0.25 x margin)`` where ``data`` is the quantity-weighted mean
    over the allocated brokers of ``freshness x n / (n + 20) x (1 - error_rate)`` (``n`` the
    observations' worth behind the profile: the smaller weight of its fill and error beliefs,
    widened by staleness, or its sample count when it has no beliefs), and
    ``margin = min(1, gap / 0.02)`` with ``gap`` the runner-up plan's cost above the best,
    relative to the best (0.5 when there was no alternative).
    Data quality dominates: a decision from stale or thin statistics is a guess however clear
    the margin; a margin near zero means a close call, costing at most a quarter.
    """
    if math.isinf(runner_up):
        margin = 0.5
    else:
        gap = (runner_up - best) / max(abs(best), 1.0)
        margin = min(1.0, max(0.0, gap / cfg.confidence_margin_ref))
    return min(1.0, max(0.0, data * (0.75 + 0.25 * margin)))


def evaluate_plan(
    order: OrderRequest,
    profiles: Sequence[BrokerProfile],
    quantities: Mapping[str, int],
    *,
    now: datetime,
    config: EngineConfig | None = None,
) -> float:
    """The objective (INR) the engine minimises, for a plan given as broker id -> shares.

    For tests and explanations: compares the engine's choice with any other split. It shares
    :func:`decide_route`'s preparation (eligibility, terms, cost models), so the two cannot
    drift: ``expected_execution.objective_inr`` is this function at the engine's allocation.

    Raises
    ------
    KeyError
        A broker of ``quantities`` cannot take part of ``order``.
    """
    prepared = _prepare(
        order, profiles, now=now, cfg=config or DEFAULT_CONFIG, counts={}, unavailable={}
    )
    by_id = {b.profile.broker_id: b for b in prepared.derived}
    splitter = math.fsum(
        by_id[broker_id].model.cost(shares)
        for broker_id, shares in sorted(quantities.items())
        if shares > 0
    )
    return splitter + _impact_value(prepared.terms)


@dataclass(frozen=True, slots=True)
class SplitProblem:
    """What :func:`decide_route` hands the splitter for one order (for benchmarks and tests)."""

    models: list[BrokerCostModel]
    total: int
    lot: int
    max_brokers: int


def split_problem(
    order: OrderRequest,
    profiles: Sequence[BrokerProfile],
    *,
    now: datetime,
    config: EngineConfig | None = None,
) -> SplitProblem:
    """The eligible brokers' cost models, quantity, lot and broker limit of ``order``.

    Raises what :func:`decide_route` raises before it optimises.
    """
    cfg = config or DEFAULT_CONFIG
    prepared = _prepare(order, profiles, now=now, cfg=cfg, counts={}, unavailable={})
    return SplitProblem(
        models=[b.model for b in prepared.derived],
        total=order.quantity,
        lot=prepared.terms.lot,
        max_brokers=order.max_brokers or cfg.max_brokers,
    )
