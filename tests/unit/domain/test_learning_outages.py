"""Outage episodes (a run of timeouts is health, not reliability) and the steady error rate."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.execution import ProfileObservation
from shared.domain.learning import (
    CHANGE_THRESHOLD,
    DAY_ONE,
    DISCOUNT,
    OUTAGE_MIN_RUN,
    BatchLearner,
    ChangeTest,
    Evidence,
    Outage,
    RateEvidence,
    change_step,
    in_outage,
    is_outage,
    observe,
    posterior,
    recovered,
)

FILLED = ProfileObservation(is_error=False, fill_rate_pct=100.0, response_time_ms=40.0)
REJECTED = ProfileObservation(is_error=True, fill_rate_pct=0.0, response_time_ms=40.0)
TIMED_OUT = ProfileObservation(
    is_error=True, fill_rate_pct=0.0, response_time_ms=2000.0, is_timeout=True
)


def fold(evidence: Evidence, observations: list[ProfileObservation]) -> Evidence:
    for o in observations:
        evidence = observe(evidence, o, clock=evidence.clock + 1, discount=DISCOUNT)
    return evidence


def reliable() -> Evidence:
    """A broker seen 100 times with one reject: about 1 % errors."""
    return fold(Evidence(), [FILLED] * 99 + [REJECTED])


def test_an_outage_raises_the_error_rate_while_it_lasts_and_is_forgotten_when_it_ends() -> None:
    # GIVEN a reliable broker
    before = reliable()
    # WHEN it stops answering for three orders
    down = fold(before, [TIMED_OUT] * 3)
    # THEN it is in an outage, and the timeouts count meanwhile (the router must leave it)
    assert in_outage(down)
    assert posterior(DAY_ONE, down).error.mean > 3 * posterior(DAY_ONE, before).error.mean
    # WHEN it answers again (a probe)
    back = recovered(down)
    # THEN the episode is forgotten but for its first timeout (the order that found it): the
    #      rates are those before it plus one error, and the episode is counted
    assert (back.error, back.fill) == (before.error.add(1.0), before.fill.add(0.0))
    assert back.error_steady == (before.error_steady or before.error).add(1.0)
    assert back.outage is None
    assert back.outages == 1.0
    assert not in_outage(back)


def test_an_answered_order_ends_an_outage_like_a_probe() -> None:
    # GIVEN a reliable broker that went down for four orders
    before = reliable()
    down = fold(before, [TIMED_OUT] * 4)
    # WHEN its next order fills
    back = fold(down, [FILLED])
    # THEN the outage is forgotten but for its first timeout, and the fill counts as one more
    #      outcome
    assert back.error == before.error.add(1.0).discounted(DISCOUNT).add(0.0)
    assert back.fill == before.fill.add(0.0).discounted(DISCOUNT).add(1.0)
    assert back.outages == DISCOUNT


def test_timeouts_of_a_broker_that_often_times_out_stay_evidence() -> None:
    # GIVEN a broker that times out about a third of the time
    flaky = fold(Evidence(), [TIMED_OUT, FILLED, FILLED] * 30)
    # WHEN three of its orders in a row time out, then one fills
    run = fold(flaky, [TIMED_OUT] * 3)
    after = fold(run, [FILLED])
    # THEN three in a row are likely for it: no outage, and the timeouts stay in its evidence
    assert not in_outage(run)
    assert after.error.events > flaky.error.events
    assert after.outages == 0.0


def test_a_single_timeout_is_never_an_outage() -> None:
    # GIVEN a very reliable broker WHEN one order times out
    one = fold(fold(Evidence(), [FILLED] * 200), [TIMED_OUT])
    # THEN one timeout is evidence, not an outage, even when it is very unlikely
    assert OUTAGE_MIN_RUN == 2
    assert not in_outage(one)
    assert recovered(one).error == one.error


def test_rejects_never_start_or_extend_an_outage() -> None:
    # GIVEN a reliable broker WHEN it rejects three orders in a row (it answered each time)
    rejects = fold(reliable(), [REJECTED] * 3)
    # THEN no run of timeouts exists: rejects are per-order reliability
    assert rejects.outage is None
    # AND a reject after a run of timeouts ends the run (the broker answers), then counts
    down = fold(reliable(), [TIMED_OUT] * 3)
    after = fold(down, [REJECTED])
    assert after.outage is None
    assert after.error == reliable().error.add(1.0).discounted(DISCOUNT).add(1.0)


def test_a_flapping_broker_has_each_episode_forgotten_and_counted() -> None:
    # GIVEN a reliable broker that goes down and comes back three times
    evidence = reliable()
    for _ in range(3):
        evidence = fold(evidence, [TIMED_OUT] * 3 + [FILLED] * 5)
    # THEN every episode was detected and forgotten, and counted (discounted) in ``outages``
    assert evidence.outage is None
    assert 2.0 < evidence.outages < 3.0
    # AND its error rate is its reliability between the episodes plus one error per episode
    #     (the order that found it), not the episodes' nine timeouts
    steady = fold(reliable(), [FILLED] * 15)
    rate = posterior(DAY_ONE, evidence).error.mean
    assert posterior(DAY_ONE, steady).error.mean < rate < 0.05


def test_acknowledgement_only_observations_leave_a_run_as_it_is() -> None:
    # GIVEN a broker in an outage WHEN an acknowledgement time alone is observed
    down = fold(reliable(), [TIMED_OUT] * 2)
    ack = ProfileObservation(response_time_ms=50.0, is_error=None)
    after = observe(down, ack, clock=down.clock, discount=DISCOUNT)
    # THEN the run goes on (the child's outcome is not known yet)
    assert after.outage == down.outage


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=0, max_value=12))
def test_an_outage_needs_a_run_its_brokers_record_makes_unlikely(rate: float, run: int) -> None:
    # GIVEN evidence before a run with this error rate, worth 100 outcomes
    before = RateEvidence(weight=100.0, events=100.0 * rate)
    outage = Outage(run=run, error=before, fill=before)
    # WHEN the run is tested
    p = (DAY_ONE.error.mean * DAY_ONE.error.weight + before.events) / (
        DAY_ONE.error.weight + before.weight
    )
    # THEN it is an outage exactly when it is long enough and less likely than 1 %
    assert is_outage(outage) == (run >= OUTAGE_MIN_RUN and p**run < 0.01)


def test_the_batch_learner_recovers_a_broker_wide_and_in_every_symbol() -> None:
    # GIVEN a broker down in two symbols, and another broker also in a run
    profiles: dict[tuple[str, str], tuple[Evidence | None, int]] = {
        key: (reliable(), 100) for key in (("a", "X"), ("a", "Y"), ("b", "X"))
    }
    learner = BatchLearner(
        discount=DISCOUNT,
        brokers={"a": (reliable(), 100), "b": (reliable(), 100)},
        profiles=profiles,
        clocks={"X": 200, "Y": 100},
    )
    for symbol in ("X", "Y", "X"):
        learner.learn("a", symbol, TIMED_OUT)
    learner.learn("b", "X", TIMED_OUT)
    learner.learn("b", "X", TIMED_OUT)
    # WHEN broker a answers a probe
    changed = learner.recover("a")
    # THEN its broker-wide evidence and both symbols forget their runs; b is untouched
    assert changed == [("a", "X"), ("a", "Y")]
    assert learner.brokers["a"][0].outage is None
    assert learner.brokers["a"][0].error == reliable().error.add(1.0)
    assert all(learner.profiles[k][0].outage is None for k in changed)
    assert learner.brokers["b"][0].outage is not None
    # AND a broker without a run has nothing to recover
    assert learner.recover("a") == []


# -- the reported error rate: undiscounted since the last change the CUSUM finds ---------------


def errors_at(rate: float, n: int, rng: random.Random, evidence: Evidence) -> Evidence:
    for _ in range(n):
        o = REJECTED if rng.random() < rate else FILLED
        evidence = observe(evidence, o, clock=evidence.clock + 1, discount=DISCOUNT)
    return evidence


def test_a_steady_broker_keeps_every_outcome_and_rarely_alarms() -> None:
    # GIVEN 50 brokers each rejecting 2 % of 2,000 children
    rng = random.Random(3)
    restarts = 0
    for _ in range(50):
        evidence = Evidence()
        for _ in range(2_000):
            before = evidence.error_steady
            evidence = errors_at(0.02, 1, rng, evidence)
            steady = evidence.error_steady
            assert steady is not None
            restarts += before is not None and steady.weight < before.weight
    # THEN the change test restarts the count rarely (false alarms: under one per 2,000)
    assert restarts < 50
    # AND a broker with no alarm counts every outcome, undiscounted
    quiet = errors_at(0.02, 300, random.Random(5), Evidence())
    assert quiet.error_steady is not None
    assert quiet.error_steady.weight in (300.0, pytest.approx(quiet.error.weight, abs=1e-9))


def test_a_rate_that_jumps_is_found_within_a_few_outcomes() -> None:
    # GIVEN brokers that rejected 2 % of 300 children, then reject 60 %
    found = []
    for seed in range(20):
        rng = random.Random(seed)
        evidence = errors_at(0.02, 300, rng, Evidence())
        for k in range(1, 60):
            evidence = errors_at(0.6, 1, rng, evidence)
            steady = evidence.error_steady
            assert steady is not None
            if steady.weight < 100:
                found.append(k)
                break
    # THEN each change is found, half of them within 25 outcomes
    assert len(found) == 20
    assert sorted(found)[10] <= 25
    # AND 60 outcomes after the change the reported rate is most of the way from 2 % to 60 %
    #     (each alarm restarts it from the discounted, ever more recent, evidence)
    evidence = errors_at(0.6, 60 - found[-1], random.Random(99), evidence)
    assert posterior(DAY_ONE, evidence).error.mean > 0.3


def test_change_step_alarms_on_a_long_run_and_resets() -> None:
    # GIVEN a 5 % broker's CUSUM WHEN ten errors come in a row
    test, alarms = ChangeTest(), list[bool]()
    for _ in range(10):
        if not any(alarms):
            test, alarm = change_step(test, 0.05, 1.0)
        alarms.append(alarm)
    # THEN it alarms once the log-likelihood ratio passes the threshold, and restarts from 0
    assert any(alarms)
    first = alarms.index(True)
    assert first * math.log(2) < CHANGE_THRESHOLD <= (first + 1) * math.log(2) + 1e-9
    assert test.up == 0.0
    # AND a success moves the up statistic down, never below 0
    test, _ = change_step(ChangeTest(up=0.001), 0.01, 0.0)
    assert test.up == 0.0


def test_evidence_stored_before_the_steady_count_existed_still_reads() -> None:
    # GIVEN evidence as stored before this change (no steady count, no change test)
    old = Evidence.model_validate({"clock": 10, "error": {"weight": 10.0, "events": 1.0}})
    # WHEN it is read and one more outcome is folded
    assert posterior(DAY_ONE, old).error.mean == pytest.approx((0.04 + 1) / 12)
    after = observe(old, FILLED, clock=11, discount=DISCOUNT)
    # THEN the steady count starts from the discounted evidence it had
    assert after.error_steady == old.error.add(0.0)
