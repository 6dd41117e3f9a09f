"""Learning with uncertainty: discounted posteriors per factor, pooled broker-wide and per symbol.

Pure: the profile adapter folds observations with :func:`observe` and turns evidence into a
profile's averages and beliefs with :func:`posterior`; the engine draws from those beliefs with
:func:`thompson_draw` (the randomness is a ``random.Random`` it builds from a seed it is given).
Method, priors and constants: docs/routing-engine.md, section "Learning".

* Rates (errors: rejects and timeouts; the filled fraction of a child) are **Beta posteriors**
  over discounted counts: ``weight`` (outcomes seen) and ``events`` (errors, or filled fraction).
* Continuous factors (slippage, price improvement, execution and acknowledgement latency) keep a
  **discounted Welford** mean and sum of squared deviations: a Normal posterior of the mean.
* **Discounting** (discounted Thompson sampling): evidence loses a factor ``discount`` per
  outcome of the same profile (or broker), so a change in a broker shows within a few of its
  own orders and nothing older than about ``1 / (1 - discount)`` of them counts much. A broker
  nobody sends to keeps its means, but its beliefs widen with the symbol's rounds (outcomes at
  any broker) since it last learned (:func:`widened`), so it is explored again.
* **Pooling** (empirical-Bayes shrinkage): a symbol's prior is its broker's broker-wide posterior
  (counted as at most ``POOL_WEIGHT`` observations), whose own prior is :data:`DAY_ONE`.
* **The reported error rate** is undiscounted since the last change a two-sided CUSUM finds
  (:class:`ChangeTest`): steady-state accuracy, and a restart from the recent (discounted)
  evidence when the rate changes.
* **Outages**: a run of timeouts its broker's record makes unlikely (:func:`is_outage`) is
  the broker's health, forgotten when the broker answers again (:func:`recovered`).
"""

from __future__ import annotations

import functools
import math
import random
from typing import NamedTuple

from pydantic import Field

from shared.domain.execution import ProfileObservation
from shared.domain.models import Belief, BrokerProfile, FrozenModel, ProfileUncertainty

DISCOUNT = 0.98
"""Evidence kept per outcome of the same profile (or broker): a window of about 50."""
POOL_WEIGHT = 3.0
"""Most observations the broker-wide posterior counts for in a symbol's prior."""
EVIDENCE_FLOOR = 1e-9
"""Evidence below this weight is dropped (it would only carry rounding)."""


class RateEvidence(FrozenModel):
    """Discounted outcome counts of a rate: ``events`` out of ``weight``."""

    weight: float = Field(default=0.0, ge=0)
    events: float = Field(default=0.0, ge=0)

    def discounted(self, factor: float) -> RateEvidence:
        """The same evidence with every count multiplied by ``factor``."""
        return RateEvidence(weight=self.weight * factor, events=self.events * factor)

    def add(self, event: float) -> RateEvidence:
        """One more outcome; ``event`` in [0, 1] (1 = it happened, a fraction for a fill)."""
        return RateEvidence(weight=self.weight + 1.0, events=self.events + event)


class MeanEvidence(FrozenModel):
    """Discounted Welford statistics: weight, mean and sum of squared deviations ``m2``."""

    weight: float = Field(default=0.0, ge=0)
    mean: float = 0.0
    m2: float = Field(default=0.0, ge=0)

    def discounted(self, factor: float) -> MeanEvidence:
        """The same evidence with every weight multiplied by ``factor`` (mean unchanged)."""
        return MeanEvidence(weight=self.weight * factor, mean=self.mean, m2=self.m2 * factor)

    def add(self, value: float) -> MeanEvidence:
        """One more observation, West's weighted update of the mean and ``m2``."""
        weight = self.weight + 1.0
        delta = value - self.mean
        mean = self.mean + delta / weight
        return MeanEvidence(weight=weight, mean=mean, m2=max(0.0, self.m2 + delta * (value - mean)))


class Prior(FrozenModel):
    """A prior belief of one factor: its mean, how many observations it counts for, its spread.

    ``spread`` is the standard deviation of one observation (for a continuous factor).
    """

    mean: float
    weight: float = Field(gt=0)
    spread: float = Field(default=0.0, ge=0)


class Priors(FrozenModel):
    """A prior for every learned factor (rates as fractions, slippage in bps, times in ms)."""

    error: Prior
    fill: Prior
    slippage: Prior
    improvement: Prior
    latency: Prior
    ack: Prior


OUTAGE_MIN_RUN = 2
"""Fewest consecutive timeouts that can be an outage episode."""
OUTAGE_P = 0.01
"""A run of timeouts is an outage when the broker's own pre-run error rate makes a run that
long less likely than this (a one-sided sequential test on the run length)."""


CHANGE_THRESHOLD = 5.0
"""Alarm level ``h`` of the error rate's change test (a log-likelihood ratio: the recent
outcomes about e^5 = 150 times likelier shifted than not). Measured: about one false alarm in
4,000 outcomes of a steady 2 % broker; a rate going from 2 % to 60 % found after a median 15-20
outcomes (routing reacts sooner: it uses the discounted evidence)."""


class ChangeTest(FrozenModel):
    """Page's two-sided CUSUM of the error outcomes against the rate learned since the last change.

    ``up`` tests the odds of an error doubling (at least +2 points), ``down`` them halving;
    each is the log-likelihood ratio of the recent outcomes, floored at 0 (E. S. Page,
    *Continuous inspection schemes*, Biometrika 1954).
    """

    up: float = Field(default=0.0, ge=0)
    down: float = Field(default=0.0, ge=0)


def change_step(test: ChangeTest, rate: float, event: float) -> tuple[ChangeTest, bool]:
    """One error outcome (``event`` 1 or 0) into the CUSUM against ``rate``; and if it alarms.

    An alarm resets both statistics to 0.
    """
    p0 = min(max(rate, 1e-4), 1 - 1e-4)
    # The odds doubling (at least 2 points more) or halving: symmetric in log-odds, so a rate
    # near 50 % is not tested against a certainty.
    high = max(2 * p0 / (1 + p0), min(1 - 1e-4, p0 + 0.02))
    low = p0 / (2 - p0)

    def llr(p1: float) -> float:
        return event * math.log(p1 / p0) + (1 - event) * math.log((1 - p1) / (1 - p0))

    up = max(0.0, test.up + llr(high))
    down = max(0.0, test.down + llr(low))
    if max(up, down) > CHANGE_THRESHOLD:
        return ChangeTest(), True
    return ChangeTest(up=up, down=down), False


class Outage(FrozenModel):
    """A run of consecutive timeouts, and the rate evidence as it was before the run began.

    While the run lasts its timeouts are also in the evidence (the router must leave a broker
    that stopped answering); when it ends -- a health probe or an order answers -- a run that
    was an outage (:func:`is_outage`) is forgotten but for its first timeout: the rates go back
    to ``error`` and ``fill`` plus that one error (:func:`recovered`).
    """

    run: int = Field(default=0, ge=0)
    """Consecutive timeouts so far."""
    error: RateEvidence = RateEvidence()
    fill: RateEvidence = RateEvidence()
    error_steady: RateEvidence | None = None
    change: ChangeTest = ChangeTest()


class Evidence(FrozenModel):
    """Everything one profile (or one broker, across symbols) has observed, discounted."""

    clock: int = Field(default=0, ge=0)
    """The profile's (or broker's) outcome count at the last update."""
    error: RateEvidence = RateEvidence()
    fill: RateEvidence = RateEvidence()
    slippage: MeanEvidence = MeanEvidence()
    improvement: MeanEvidence = MeanEvidence()
    latency: MeanEvidence = MeanEvidence()
    ack: MeanEvidence = MeanEvidence()
    error_steady: RateEvidence | None = None
    """Error outcomes since the error rate last changed, undiscounted: the reported error rate
    (``None`` in evidence from before it existed: ``error`` stands in)."""
    change: ChangeTest = ChangeTest()
    """The change test of the error rate."""
    outage: Outage | None = None
    """The run of timeouts going on now, if any (docs/routing-engine.md, "Outages")."""
    outages: float = Field(default=0.0, ge=0)
    """Outage episodes that ended and were forgotten, discounted like the evidence."""


DAY_ONE = Priors(
    error=Prior(mean=0.02, weight=2.0),
    fill=Prior(mean=0.95, weight=2.0),
    slippage=Prior(mean=1.0, weight=1.0, spread=3.0),
    improvement=Prior(mean=0.0, weight=1.0, spread=1.0),
    latency=Prior(mean=500.0, weight=1.0, spread=400.0),
    ack=Prior(mean=150.0, weight=1.0, spread=150.0),
)
"""What a broker nobody has observed is believed to do: 2 % errors, 95 % filled, 1 bps of
slippage, no price improvement, 500 ms to fill and 150 ms to acknowledge, each counting for
one observation (two for the rates), so a few real outcomes outweigh it
(docs/routing-engine.md, "Day one")."""


def observe(
    evidence: Evidence, observation: ProfileObservation, *, clock: int, discount: float
) -> Evidence:
    """Fold one observation into ``evidence`` at round ``clock``.

    Every count is first discounted by ``discount ** (clock - evidence.clock)`` (the rounds
    since the last update, at least 0), then the observation's fields that are not ``None``
    are added. The result's clock is ``max(clock, evidence.clock)``.
    """
    factor = discount ** max(0, clock - evidence.clock)
    o = observation
    if o.is_error is not None and not o.is_timeout:
        # An answer ends a run of timeouts: an outage is forgotten, a short run stays evidence.
        evidence = recovered(evidence)
    error = evidence.error.discounted(factor)
    fill = evidence.fill.discounted(factor)
    outage = evidence.outage
    steady = evidence.error_steady or evidence.error
    change = evidence.change
    if o.is_timeout:
        # The evidence as it was before the run: an outage's rounds, once forgotten, age nothing.
        outage = outage or Outage(
            error=evidence.error, fill=evidence.fill, error_steady=steady, change=change
        )
        outage = outage.model_copy(update={"run": outage.run + 1})
    if o.is_error is not None:
        event = 1.0 if o.is_error else 0.0
        error = error.add(event)
        change, alarm = change_step(change, rate_belief(DAY_ONE.error, steady).mean, event)
        # After a change the steady count restarts from the discounted evidence: the recent
        # outcomes, not only those since the CUSUM's change point, whose segment is chosen for
        # being extreme (after a false alarm it would be far off). A real change that the
        # restart under-states alarms again and is caught up within a few dozen outcomes.
        steady = error if alarm else steady.add(event)
    if o.fill_rate_pct is not None:
        fill = fill.add(o.fill_rate_pct / 100)
    return Evidence(
        clock=max(clock, evidence.clock),
        error=error,
        fill=fill,
        error_steady=steady,
        change=change,
        slippage=_mean_step(evidence.slippage, o.slippage_bps, factor),
        improvement=_mean_step(evidence.improvement, o.price_improvement_bps, factor),
        latency=_mean_step(evidence.latency, o.latency_ms, factor),
        ack=_mean_step(evidence.ack, o.response_time_ms, factor),
        outage=outage,
        outages=evidence.outages * factor,
    )


def is_outage(outage: Outage | None) -> bool:
    """Whether a run of timeouts is an outage episode rather than bad luck.

    The run must be at least :data:`OUTAGE_MIN_RUN` long and less likely than :data:`OUTAGE_P`
    under the error rate the evidence before the run gives (day-one prior included): two
    timeouts in a row at a broker erring 0.5 % of the time (p = 2.5e-5) are an outage; at a
    broker timing out 30 % of the time it takes four (0.8 %), so its timeouts stay evidence.
    """
    if outage is None or outage.run < OUTAGE_MIN_RUN:
        return False
    rate = rate_belief(DAY_ONE.error, outage.error).mean
    return bool(rate**outage.run < OUTAGE_P)


def in_outage(evidence: Evidence | None) -> bool:
    """Whether ``evidence`` ends in an outage episode that has not ended yet."""
    return evidence is not None and is_outage(evidence.outage)


def recovered(evidence: Evidence) -> Evidence:
    """``evidence`` once its broker answers again (an order, or a health probe).

    An outage episode is forgotten -- the rates go back to what they were before the run, the
    episode is counted in ``outages`` -- as the broker's health, not its per-order reliability;
    only its **first** timeout stays, as one error: the order that found the outage, which no
    router avoids, so a broker that goes down often keeps paying for it in its rates. A run too
    short or too likely to be an outage stays in the evidence whole. Either way the run ends.
    Evidence without a run is returned as it is.
    """
    outage = evidence.outage
    if outage is None:
        return evidence
    if not is_outage(outage):
        return evidence.model_copy(update={"outage": None})
    return evidence.model_copy(
        update={
            "error": outage.error.add(1.0),
            "fill": outage.fill.add(0.0),
            "error_steady": (outage.error_steady or outage.error).add(1.0),
            "change": outage.change,
            "outage": None,
            "outages": evidence.outages + 1.0,
        }
    )


def _mean_step(evidence: MeanEvidence, value: float | None, factor: float) -> MeanEvidence:
    kept = evidence.discounted(factor)
    return kept if value is None else kept.add(value)


def rate_belief(prior: Prior, evidence: RateEvidence) -> Prior:
    """The Beta posterior's mean and weight (``a + b``) of a rate; spread = the rate's sd."""
    weight = prior.weight + evidence.weight
    mean = (prior.mean * prior.weight + evidence.events) / weight
    mean = min(1.0, max(0.0, mean))
    return Prior(mean=mean, weight=weight, spread=math.sqrt(mean * (1 - mean) / (weight + 1)))


def mean_belief(prior: Prior, evidence: MeanEvidence) -> Prior:
    """The posterior of a mean: the prior counted as ``prior.weight`` observations.

    The spread of one observation pools the prior's spread, the evidence's own deviations and
    the gap between the two means (the law of total variance over both samples).
    """
    weight = prior.weight + evidence.weight
    mean = (prior.mean * prior.weight + evidence.mean * evidence.weight) / weight
    gap = evidence.mean - prior.mean
    squares = prior.weight * prior.spread**2 + evidence.m2
    squares += prior.weight * evidence.weight / weight * gap * gap
    return Prior(mean=mean, weight=weight, spread=math.sqrt(squares / weight))


def posterior(priors: Priors, evidence: Evidence) -> Priors:
    """Every factor's posterior from its prior and the evidence."""
    return Priors(
        error=rate_belief(priors.error, evidence.error_steady or evidence.error),
        fill=rate_belief(priors.fill, evidence.fill),
        slippage=mean_belief(priors.slippage, evidence.slippage),
        improvement=mean_belief(priors.improvement, evidence.improvement),
        latency=mean_belief(priors.latency, evidence.latency),
        ack=mean_belief(priors.ack, evidence.ack),
    )


def pooled_prior(broker_wide: Priors, pool_weight: float = POOL_WEIGHT) -> Priors:
    """The broker-wide posterior as a symbol's prior, counted as at most ``pool_weight``."""

    def cap(p: Prior) -> Prior:
        return Prior(mean=p.mean, weight=min(p.weight, pool_weight), spread=p.spread)

    b = broker_wide
    return Priors(
        error=cap(b.error),
        fill=cap(b.fill),
        slippage=cap(b.slippage),
        improvement=cap(b.improvement),
        latency=cap(b.latency),
        ack=cap(b.ack),
    )


def symbol_posterior(broker_evidence: Evidence | None, evidence: Evidence | None) -> Priors:
    """A (broker, symbol)'s posterior: day-one prior -> broker-wide -> this symbol's evidence."""
    broker_wide = posterior(DAY_ONE, broker_evidence or Evidence())
    return posterior(pooled_prior(broker_wide), evidence or Evidence())


def declared_evidence(profile: BrokerProfile, *, clock: int) -> Evidence:
    """A profile's figures (seeded or declared by an operator) as its first evidence.

    Each counts for ``min(sample_count, POOL_WEIGHT)`` observations (at least one) at the
    figure, with the day-one spreads, and is discounted like any evidence: real outcomes
    replace it within about ``1 / (1 - discount)`` rounds, leaving no lasting bias.
    """
    weight = float(min(max(profile.sample_count, 1), POOL_WEIGHT))
    d = DAY_ONE

    def rate(pct: float) -> RateEvidence:
        return RateEvidence(weight=weight, events=weight * min(1.0, max(0.0, pct / 100)))

    def mean(value: float, prior: Prior) -> MeanEvidence:
        return MeanEvidence(weight=weight, mean=value, m2=weight * prior.spread**2)

    return Evidence(
        clock=clock,
        error=rate(profile.error_rate_percentage),
        fill=rate(profile.fill_rate_percentage),
        slippage=mean(profile.slippage_bps, d.slippage),
        improvement=mean(profile.price_improvement_bps, d.improvement),
        latency=mean(profile.avg_execution_time_ms, d.latency),
        ack=mean(profile.response_time_ms, d.ack),
    )


def _belief(p: Prior, *, rate: bool) -> Belief:
    if rate:
        return Belief(weight=p.weight, sd=100 * p.spread)
    return Belief(weight=p.weight, sd=p.spread / math.sqrt(p.weight))


def uncertainty(post: Priors, *, clock: int, pooled: bool = False) -> ProfileUncertainty:
    """The beliefs a profile carries: weights, and the sd of each estimate (rates in %)."""
    return ProfileUncertainty(
        clock=clock,
        fill_rate=_belief(post.fill, rate=True),
        error_rate=_belief(post.error, rate=True),
        slippage=_belief(post.slippage, rate=False),
        price_improvement=_belief(post.improvement, rate=False),
        execution_time=_belief(post.latency, rate=False),
        response_time=_belief(post.ack, rate=False),
        pooled=pooled,
    )


def learned_fields(post: Priors) -> dict[str, float]:
    """A profile's learned averages (the specification's columns) from a posterior."""
    return {
        "fill_rate_percentage": round(100 * post.fill.mean, 4),
        "error_rate_percentage": round(100 * post.error.mean, 4),
        "slippage_bps": post.slippage.mean,
        "price_improvement_bps": post.improvement.mean,
        "avg_execution_time_ms": max(0.0, post.latency.mean),
        "response_time_ms": max(0.0, post.ack.mean),
    }


WIDEST_WEIGHT = 2.0
"""Staleness widens a belief down to at most this many observations (the day-one width)."""


def widened(belief: Belief, rounds: int, discount: float) -> Belief:
    """A belief not refreshed for ``rounds`` rounds: weight x ``discount ** rounds``, sd wider.

    The weight never falls below ``min(weight, WIDEST_WEIGHT)``: a stale belief becomes as
    unsure as a day-one prior, never more, and the sd grows as ``1 / sqrt(weight)``.
    """
    if belief.weight <= 0:
        return belief
    weight = max(belief.weight * discount ** max(0, rounds), min(belief.weight, WIDEST_WEIGHT))
    return Belief(weight=weight, sd=belief.sd * math.sqrt(belief.weight / weight))


def declared_uncertainty(sample_count: int, *, clock: int) -> ProfileUncertainty:
    """Beliefs for figures nothing was learned for yet (seeded or declared by an operator).

    They count for ``min(sample_count, POOL_WEIGHT)`` observations (at least one) with the
    day-one spreads: the router explores them and a few real outcomes replace them.
    """
    weight = float(min(max(sample_count, 1), POOL_WEIGHT))

    def spread(prior: Prior) -> Belief:
        return Belief(weight=weight, sd=prior.spread / math.sqrt(weight))

    def rate(prior: Prior) -> Belief:
        return Belief(
            weight=weight, sd=100 * math.sqrt(prior.mean * (1 - prior.mean) / (weight + 1))
        )

    d = DAY_ONE
    return ProfileUncertainty(
        clock=clock,
        fill_rate=rate(d.fill),
        error_rate=rate(d.error),
        slippage=spread(d.slippage),
        price_improvement=spread(d.improvement),
        execution_time=spread(d.latency),
        response_time=spread(d.ack),
    )


def _beta_draw(rng: random.Random, mean: float, weight: float) -> float:
    if weight <= 0:
        return rng.random()
    a = max(mean * weight, EVIDENCE_FLOOR)
    b = max((1 - mean) * weight, EVIDENCE_FLOOR)
    return rng.betavariate(a, b)


class Draw(NamedTuple):
    """One Thompson draw of a profile's learned factors (rates as percentages)."""

    fill_rate_percentage: float
    slippage_bps: float
    price_improvement_bps: float
    avg_execution_time_ms: float
    response_time_ms: float


@functools.cache
def _declared_widths(sample_count: int) -> tuple[float, float, float, float, float]:
    """``(weight, slippage sd, improvement sd, latency sd, ack sd)`` of declared figures."""
    weight = float(min(max(sample_count, 1), POOL_WEIGHT))
    d = DAY_ONE
    root = math.sqrt(weight)
    return (
        weight,
        d.slippage.spread / root,
        d.improvement.spread / root,
        d.latency.spread / root,
        d.ack.spread / root,
    )


def _widen(weight: float, sd: float, factor: float) -> tuple[float, float]:
    """:func:`widened` on floats (the exploring decision's inner loop: no model is built)."""
    if weight <= 0:
        return weight, sd
    wide = max(weight * factor, min(weight, WIDEST_WEIGHT))
    return wide, sd * math.sqrt(weight / wide)


def thompson_factors(
    profile: BrokerProfile, rng: random.Random, *, clock: int, discount: float
) -> Draw:
    """One draw of the profile's learned factors from their (widened) posteriors.

    Rates are drawn from Beta posteriors with the belief's weight, continuous factors from a
    Normal around the average with the belief's sd; beliefs are first widened by the rounds
    since the profile last learned (``clock - uncertainty.clock``). A profile nothing was
    learned for (``uncertainty`` is ``None``) is drawn with :func:`declared_uncertainty`'s
    widths. Always the same draws for the same ``rng`` state.
    """
    u = profile.uncertainty
    if u is None:
        weight, slip_sd, improvement_sd, latency_sd, ack_sd = _declared_widths(profile.sample_count)
        fill_weight = weight
    else:
        factor = discount ** max(0, clock - u.clock)
        fill_weight = _widen(u.fill_rate.weight, u.fill_rate.sd, factor)[0]
        slip_sd = _widen(u.slippage.weight, u.slippage.sd, factor)[1]
        improvement_sd = _widen(u.price_improvement.weight, u.price_improvement.sd, factor)[1]
        latency_sd = _widen(u.execution_time.weight, u.execution_time.sd, factor)[1]
        ack_sd = _widen(u.response_time.weight, u.response_time.sd, factor)[1]
    fill = _beta_draw(rng, profile.fill_rate_percentage / 100, fill_weight)
    return Draw(
        fill_rate_percentage=100 * min(1.0, max(0.0, fill)),
        slippage_bps=rng.gauss(profile.slippage_bps, slip_sd),
        price_improvement_bps=rng.gauss(profile.price_improvement_bps, improvement_sd),
        avg_execution_time_ms=max(0.0, rng.gauss(profile.avg_execution_time_ms, latency_sd)),
        response_time_ms=max(0.0, rng.gauss(profile.response_time_ms, ack_sd)),
    )


def thompson_draw(
    profile: BrokerProfile, rng: random.Random, *, clock: int, discount: float
) -> BrokerProfile:
    """The profile with its learned factors replaced by one draw (:func:`thompson_factors`)."""
    drawn = thompson_factors(profile, rng, clock=clock, discount=discount)
    return profile.model_copy(update=drawn._asdict())


class BatchLearner:
    """Folds a batch of observations into locked evidence, in order (the adapter's fold).

    Parameters
    ----------
    discount
        Evidence kept per round (:data:`DISCOUNT`).
    brokers
        Broker id -> (broker-wide evidence or ``None``, outcomes counted).
    profiles
        (broker id, symbol) -> (the profile's evidence or ``None``, its ``sample_count``).
    clocks
        Symbol -> outcomes counted at every broker (the symbol's round).
    """

    def __init__(
        self,
        *,
        discount: float,
        brokers: dict[str, tuple[Evidence | None, int]],
        profiles: dict[tuple[str, str], tuple[Evidence | None, int]],
        clocks: dict[str, int],
    ) -> None:
        self.discount = discount
        self.brokers = {b: (e or Evidence(clock=n), n) for b, (e, n) in brokers.items()}
        self.profiles = {k: (e or Evidence(clock=n), n) for k, (e, n) in profiles.items()}
        self.clocks = dict(clocks)

    def learn(self, broker_id: str, symbol: str, observation: ProfileObservation) -> None:
        """One observation: an outcome advances the symbol's, broker's and profile's counts."""
        outcome = 1 if observation.is_error is not None else 0
        self.clocks[symbol] = self.clocks.get(symbol, 0) + outcome
        evidence, samples = self.profiles[(broker_id, symbol)]
        self.profiles[(broker_id, symbol)] = (
            observe(evidence, observation, clock=samples + outcome, discount=self.discount),
            samples + outcome,
        )
        wide, count = self.brokers[broker_id]
        self.brokers[broker_id] = (
            observe(wide, observation, clock=count + outcome, discount=self.discount),
            count + outcome,
        )

    def recover(self, broker_id: str) -> list[tuple[str, str]]:
        """The broker answers again: end its runs of timeouts, broker-wide and per symbol.

        Returns the (broker, symbol) keys whose evidence changed (their posteriors must be
        written again).
        """
        wide, count = self.brokers[broker_id]
        self.brokers[broker_id] = (recovered(wide), count)
        changed: list[tuple[str, str]] = []
        for key, (evidence, samples) in sorted(self.profiles.items()):
            if key[0] == broker_id and evidence.outage is not None:
                self.profiles[key] = (recovered(evidence), samples)
                changed.append(key)
        return changed

    def profile_posterior(self, broker_id: str, symbol: str) -> Priors:
        """The profile's posterior: day one -> broker-wide -> its own evidence."""
        return symbol_posterior(self.brokers[broker_id][0], self.profiles[(broker_id, symbol)][0])
