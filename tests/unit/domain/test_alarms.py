"""The alarm table, CloudWatch's evaluation rules and EMF reading (pure)."""

from __future__ import annotations

import pytest

from shared.domain.alarms import (
    ALARM_DEFINITIONS,
    AlarmDefinition,
    AlarmState,
    MetricSource,
    definition_of,
    emf_points,
    evaluate,
    statistic,
)

MINUTE_MS = 60_000


def _defn(name: str) -> AlarmDefinition:
    found = definition_of(name)
    assert found is not None
    return found


def test_every_alarm_has_a_unique_name_and_what_it_guards() -> None:
    # GIVEN the table WHEN read THEN names are unique and every row says what it guards
    names = [d.name for d in ALARM_DEFINITIONS]
    assert len(names) == len(set(names)) == 9
    assert all(d.guards and d.description for d in ALARM_DEFINITIONS)
    assert all(d.datapoints_to_alarm <= d.evaluation_periods for d in ALARM_DEFINITIONS)
    # AND every Lambda metric names its function
    assert all(d.function for d in ALARM_DEFINITIONS if d.source is MetricSource.LAMBDA)


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("Sum", [1, 2, 3], 6),
        ("Maximum", [1, 5, 3], 5),
        ("Average", [1, 2, 3], 2),
        ("p95", list(range(1, 101)), 95),
        ("p90", [10, 20, 30], 30),
        ("p50", [10, 20, 30, 40], 20),
    ],
)
def test_statistics(name: str, values: list[float], expected: float) -> None:
    # GIVEN raw values WHEN a statistic is taken THEN it is CloudWatch's (nearest rank)
    assert statistic(name, values) == expected


def test_unknown_statistic_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown statistic"):
        statistic("median", [1.0])


def test_one_quarantined_report_alarms_at_once() -> None:
    # GIVEN QuarantinedReports (Sum > 0, 1 of 1 five-minute period) and one report now
    definition = _defn("QuarantinedReports")
    now = 10 * 300_000 + 1_000
    # WHEN evaluated
    outcome = evaluate(definition, [(now - 500, 1.0)], now_ms=now)
    # THEN it is in ALARM with CloudWatch's wording
    assert outcome.state is AlarmState.ALARM
    assert outcome.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints")


def test_a_report_older_than_the_period_no_longer_alarms() -> None:
    # GIVEN a quarantined report just over five minutes old
    definition = _defn("QuarantinedReports")
    now = 10 * 300_000 + 1_000
    # WHEN evaluated now THEN missing data is not breaching: OK
    assert evaluate(definition, [(now - 300_001, 1.0)], now_ms=now).state is AlarmState.OK
    # AND one just under five minutes old still alarms (as CloudWatch's does until re-evaluated)
    assert evaluate(definition, [(now - 299_999, 1.0)], now_ms=now).state is AlarmState.ALARM


def test_latency_alarm_needs_three_of_five_minutes() -> None:
    # GIVEN RoutingLatency p95 > 50 ms, 3 of 5 one-minute datapoints
    definition = _defn("RoutingLatencyP95")
    now = 100 * MINUTE_MS + 10
    slow = [(now - k * MINUTE_MS, 80.0) for k in range(2)]
    fast = [(now - 2 * MINUTE_MS, 10.0)]
    # WHEN two minutes are slow THEN OK; WHEN three are THEN ALARM
    assert evaluate(definition, slow + fast, now_ms=now).state is AlarmState.OK
    third = [(now - 3 * MINUTE_MS, 90.0)]
    assert evaluate(definition, slow + fast + third, now_ms=now).state is AlarmState.ALARM
    # AND values older than the five minutes do not count
    old = [(now - 6 * MINUTE_MS, 90.0)]
    assert evaluate(definition, slow + old, now_ms=now).state is AlarmState.OK


def test_emf_document_gives_one_point_per_value_and_dimension_set() -> None:
    # GIVEN an EMF document with two dimension sets and a list of values
    doc = {
        "_aws": {
            "Timestamp": 1_700_000_000_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "OrderRouter",
                    "Dimensions": [["service"], ["service", "reason"]],
                    "Metrics": [{"Name": "QuarantinedReports", "Unit": "Count"}],
                }
            ],
        },
        "service": "order-router",
        "reason": "OVERFILL",
        "QuarantinedReports": [1.0, 2.0],
    }
    # WHEN read
    points = emf_points(doc)
    # THEN each value is recorded under each dimension set
    assert len(points) == 4
    assert {p.dimensions for p in points} == {
        (("service", "order-router"),),
        (("reason", "OVERFILL"), ("service", "order-router")),
    }
    assert {p.namespace for p in points} == {"OrderRouter"}


@pytest.mark.parametrize(
    "doc",
    [{}, {"_aws": "x"}, {"_aws": {"Timestamp": "now"}}, {"message": "hello"}],
)
def test_not_emf_gives_nothing(doc: dict[str, object]) -> None:
    assert emf_points(doc) == []
