"""The service's alarms: one typed table of definitions, their states, and how they are evaluated.

``infra/observability.py`` creates a CloudWatch alarm from each :data:`ALARM_DEFINITIONS` row and
local mode evaluates the same rows against the metrics its handlers emit, so the two cannot
drift: a threshold changed here changes both (``docs/dashboard.md``, "Alarm summary").

Pure: no boto3, no Redis. :func:`evaluate` follows CloudWatch's rules for a metric alarm
("M out of N" datapoints, missing data not breaching); :func:`emf_points` reads an Embedded
Metric Format document as CloudWatch Logs does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.domain.models import FrozenModel


class AlarmState(StrEnum):
    """CloudWatch's three alarm states."""

    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class Comparison(StrEnum):
    """CloudWatch comparison operators the alarms use."""

    GREATER_THAN_THRESHOLD = "GreaterThanThreshold"
    GREATER_THAN_OR_EQUAL_TO_THRESHOLD = "GreaterThanOrEqualToThreshold"
    LESS_THAN_THRESHOLD = "LessThanThreshold"

    def breached(self, value: float, threshold: float) -> bool:
        """Whether ``value`` breaches ``threshold`` under this operator."""
        if self is Comparison.GREATER_THAN_THRESHOLD:
            return value > threshold
        if self is Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD:
            return value >= threshold
        return value < threshold


class MetricSource(StrEnum):
    """Where an alarm's metric comes from.

    ``SERVICE``: the handlers' own EMF metrics (namespace ``OrderRouter``, dimension
    ``service``), which local mode also produces. The others are AWS services' metrics (the
    HTTP API, SQS, Lambda) that exist only in AWS.
    """

    SERVICE = "SERVICE"
    HTTP_API = "HTTP_API"
    SQS_DLQ = "SQS_DLQ"
    LAMBDA = "LAMBDA"


@dataclass(frozen=True, slots=True)
class AlarmDefinition:
    """One alarm: what it watches, and when it fires.

    Attributes
    ----------
    name
        The alarm's name after the stack's prefix (``<prefix><name>``) and its construct id.
    metric
        The metric name (for ``LAMBDA``, the function's metric, e.g. ``Errors``).
    source
        Where the metric comes from.
    statistic
        ``Sum``, ``Maximum``, ``Average`` or a percentile ``pNN``.
    threshold, comparison
        The value compared with each period's statistic.
    period_s
        Length of one datapoint.
    evaluation_periods, datapoints_to_alarm
        "M out of N": the alarm fires when ``datapoints_to_alarm`` of the last
        ``evaluation_periods`` datapoints breach.
    guards
        The SLO or failure signal it guards, for operators.
    description
        The alarm's description (CloudWatch's ``AlarmDescription``).
    function
        For ``LAMBDA``: the function whose metric it is.
    """

    name: str
    metric: str
    source: MetricSource
    statistic: str
    threshold: float
    comparison: Comparison
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    guards: str
    description: str
    function: str | None = None


ROUTING_LATENCY_P95_MS = 50
ORDER_LATENCY_P90_MS = 200
HTTP_5XX_RATE_PERCENT = 1
WS_PUSH_FAILURES_PER_5_MIN = 10
QUARANTINED_REPORTS_METRIC = "QuarantinedReports"
_GT = Comparison.GREATER_THAN_THRESHOLD

ALARM_DEFINITIONS: tuple[AlarmDefinition, ...] = (
    AlarmDefinition(
        "RoutingLatencyP95", "RoutingLatency", MetricSource.SERVICE, "p95",
        ROUTING_LATENCY_P95_MS, _GT, 60, 5, 3,
        guards=f"SLO: routing decision p95 < {ROUTING_LATENCY_P95_MS} ms",
        description=f"Routing p95 above {ROUTING_LATENCY_P95_MS} ms (3 of 5 min)",
    ),
    AlarmDefinition(
        "OrderLatencyP90", "OrderLatency", MetricSource.SERVICE, "p90",
        ORDER_LATENCY_P90_MS, _GT, 60, 5, 3,
        guards=f"SLO: smart order routed and placed, p90 < {ORDER_LATENCY_P90_MS} ms",
        description=f"Execution (smart order) p90 above {ORDER_LATENCY_P90_MS} ms (3 of 5 min)",
    ),
    # Orders beyond route_order's reserved concurrency are refused by Lambda: the API throttle
    # should have stopped them first (infra/capacity.py, docs/capacity.md).
    AlarmDefinition(
        "RouteOrderThrottles", "Throttles", MetricSource.LAMBDA, "Sum", 0, _GT, 60, 1, 1,
        guards="Capacity: route_order's reserved concurrency",
        description="route_order reached its reserved concurrency and refused invocations",
        function="route_order",
    ),
    AlarmDefinition(
        "Http5xxRate", "5xxRate", MetricSource.HTTP_API, "Sum", HTTP_5XX_RATE_PERCENT, _GT,
        60, 5, 3,
        guards=f"SLO: HTTP API 5xx below {HTTP_5XX_RATE_PERCENT}%",
        description=f"HTTP API 5xx above {HTTP_5XX_RATE_PERCENT}% (3 of 5 min)",
    ),
    AlarmDefinition(
        "DlqDepth", "ApproximateNumberOfMessagesVisible", MetricSource.SQS_DLQ, "Maximum", 0,
        _GT, 60, 1, 1,
        guards="Every execution report applied (tracker dead-letter queue empty)",
        description="Events or records the tracker could not process",
    ),
    AlarmDefinition(
        "TrackExecutionErrors", "Errors", MetricSource.LAMBDA, "Sum", 0, _GT, 300, 1, 1,
        guards="Every execution report applied (tracker invocations succeed)",
        description="track_execution invocations failed",
        function="track_execution",
    ),
    # A broker filled a child after we timed it out and sent its quantity elsewhere: the order
    # may hold more than the trader asked for (orders.status OVERFILLED).
    AlarmDefinition(
        "LateFillsAfterTimeout", "LateFillsAfterTimeout", MetricSource.SERVICE, "Sum", 0, _GT,
        300, 1, 1,
        guards="No order filled beyond its quantity",
        description="A broker filled after its timeout; check OVERFILLED orders",
    ),
    # A broker sent a report that cannot be true of its child (docs/execution-tracking.md): it
    # was held, not applied; list it with `order-router quarantine`.
    AlarmDefinition(
        "QuarantinedReports", QUARANTINED_REPORTS_METRIC, MetricSource.SERVICE, "Sum", 0, _GT,
        300, 1, 1,
        guards="Every broker report is possible (none quarantined)",
        description="An execution report was quarantined; list the held reports and their "
        "reasons",
    ),
    # A few failures are normal (a client vanished between lookup and push).
    AlarmDefinition(
        "WebSocketPushFailures", "WebSocketPushFailures", MetricSource.SERVICE, "Sum",
        WS_PUSH_FAILURES_PER_5_MIN, _GT, 300, 1, 1,
        guards="Live updates reach the dashboards",
        description=f"More than {WS_PUSH_FAILURES_PER_5_MIN} WebSocket pushes failed in 5 min",
    ),
)  # fmt: skip
"""Every alarm of the stack, in the order the operator view lists them."""


def definition_of(name: str) -> AlarmDefinition | None:
    """The definition named ``name`` (without the stack's prefix), or ``None``."""
    return next((d for d in ALARM_DEFINITIONS if d.name == name), None)


class AlarmView(FrozenModel):
    """One alarm as the operator view shows it (``GET /api/v1/admin/alarms``)."""

    name: str
    state: AlarmState
    reason: str
    updated_at: datetime
    metric: str
    statistic: str
    threshold: float
    comparison: Comparison
    period_s: int
    guards: str
    description: str


class AlarmSummary(FrozenModel):
    """Every alarm of the stack and where their states come from."""

    source: str
    evaluated_at: datetime
    alarms: tuple[AlarmView, ...]


def view_of(
    definition: AlarmDefinition, state: AlarmState, reason: str, updated_at: datetime
) -> AlarmView:
    """An :class:`AlarmView` of ``definition`` in ``state``."""
    return AlarmView(
        name=definition.name,
        state=state,
        reason=reason,
        updated_at=updated_at,
        metric=definition.metric,
        statistic=definition.statistic,
        threshold=definition.threshold,
        comparison=definition.comparison,
        period_s=definition.period_s,
        guards=definition.guards,
        description=definition.description,
    )


# -- evaluation (local mode) ----------------------------------------------------------------------


def statistic(name: str, values: Sequence[float]) -> float:
    """CloudWatch's ``Sum``, ``Maximum``, ``Minimum``, ``Average``, ``SampleCount`` or ``pNN``.

    Percentiles use the nearest rank, as CloudWatch does on raw values.

    Raises
    ------
    ValueError
        An unknown statistic or no values.
    """
    if not values:
        raise ValueError("no values")
    simple: dict[str, Callable[[Sequence[float]], float]] = {
        "Sum": math.fsum,
        "Maximum": max,
        "Minimum": min,
        "Average": lambda v: math.fsum(v) / len(v),
        "SampleCount": lambda v: float(len(v)),
    }
    if name in simple:
        return float(simple[name](values))
    if name.startswith("p") and name[1:].replace(".", "", 1).isdigit():
        ordered = sorted(values)
        rank = math.ceil(float(name[1:]) / 100 * len(ordered))
        return ordered[max(rank, 1) - 1]
    raise ValueError(f"unknown statistic {name!r}")


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value of one metric at one time, with its full dimension set."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    at_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of :func:`evaluate`."""

    state: AlarmState
    reason: str
    breaching: list[tuple[int, float]] = field(default_factory=list)


def evaluate(
    definition: AlarmDefinition, points: Iterable[tuple[int, float]], *, now_ms: int
) -> Evaluation:
    """Evaluate a metric alarm on raw ``(epoch ms, value)`` points, as CloudWatch would.

    The last ``evaluation_periods`` periods, counted back from ``now_ms``, each give one
    datapoint: the statistic of their values. Local mode evaluates on read, so a breach shows at
    once and stays for one period after it happened, as a CloudWatch alarm stays in ALARM until
    the next period is evaluated. A period without values is missing data, treated as not
    breaching (the stack's ``TreatMissingData.NOT_BREACHING``). A datapoint is labelled with the
    time of its latest value.

    Parameters
    ----------
    definition
        The alarm.
    points
        The metric's values (older ones are ignored).
    now_ms
        The evaluation time.

    Returns
    -------
    Evaluation
        ``ALARM`` when ``datapoints_to_alarm`` periods breach, else ``OK``, with a reason
        worded like CloudWatch's.
    """
    period_ms = definition.period_s * 1000
    buckets: dict[int, list[tuple[int, float]]] = {}
    for at_ms, value in points:
        age = (now_ms - at_ms) // period_ms
        if 0 <= age < definition.evaluation_periods:
            buckets.setdefault(age, []).append((at_ms, value))
    datapoints = [
        (max(at for at, _ in values), statistic(definition.statistic, [v for _, v in values]))
        for _, values in sorted(buckets.items(), reverse=True)
    ]
    breaching = [
        (at, v) for at, v in datapoints if definition.comparison.breached(v, definition.threshold)
    ]
    shown = ", ".join(f"{v:g} ({_clock(at)})" for at, v in reversed(datapoints)) or "none"
    words = _COMPARISON_WORDS[definition.comparison]
    window = f"the last {definition.evaluation_periods} datapoints [{shown}]"
    if len(breaching) >= definition.datapoints_to_alarm:
        return Evaluation(
            AlarmState.ALARM,
            f"Threshold Crossed: {len(breaching)} out of {window} {words} the threshold "
            f"({definition.threshold:g}).",
            breaching,
        )
    return Evaluation(
        AlarmState.OK,
        f"{len(breaching)} out of {window} {words} the threshold ({definition.threshold:g}); "
        f"{definition.datapoints_to_alarm} needed (missing data is not breaching).",
    )


_COMPARISON_WORDS = {
    Comparison.GREATER_THAN_THRESHOLD: "were greater than",
    Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD: "were greater than or equal to",
    Comparison.LESS_THAN_THRESHOLD: "were less than",
}


def _clock(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%H:%M:%S")


# -- Embedded Metric Format -------------------------------------------------------------------


def emf_points(document: Mapping[str, Any]) -> list[MetricPoint]:
    """The metric values of one EMF document, one per value and dimension set.

    As CloudWatch Logs does: every metric of every ``CloudWatchMetrics`` directive is recorded
    once per dimension set listed there, with the dimension values read from the document's
    top level; a value may be a number or a list of numbers. Anything that is not EMF yields
    nothing.
    """
    meta = document.get("_aws")
    if not isinstance(meta, Mapping):
        return []
    at_ms = meta.get("Timestamp")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(at_ms, int) or not isinstance(directives, list):
        return []
    points: list[MetricPoint] = []
    for directive in directives:
        if not isinstance(directive, Mapping):
            continue
        namespace = str(directive.get("Namespace", ""))
        for names in directive.get("Dimensions") or [[]]:
            dimensions = tuple(sorted((str(n), str(document.get(n, ""))) for n in names))
            for metric in directive.get("Metrics") or []:
                name = metric.get("Name") if isinstance(metric, Mapping) else None
                raw = document.get(name) if isinstance(name, str) else None
                values = raw if isinstance(raw, list) else [raw]
                points.extend(
                    MetricPoint(namespace, str(name), dimensions, at_ms, float(v))
                    for v in values
                    if isinstance(v, int | float) and not isinstance(v, bool)
                )
    return points
