"""Powertools Tracer for the handlers, created on the first invocation rather than at import.

Creating a ``Tracer`` imports the X-Ray SDK, which imports botocore: about half of a handler's
import time. Module import then stays small (and so do the tests and tools that import handler
modules), and the SDK loads once per container when the first invocation is traced. The total
cold start is the same; what changes is that nothing pays for tracing that is never invoked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import cache, wraps
from typing import Any

# Re-exported: the handlers count it here; the alarm table (shared/domain/alarms.py) owns it.
from shared.domain.alarms import QUARANTINED_REPORTS_METRIC

__all__ = [
    "NAMESPACE",
    "QUARANTINED_REPORTS_METRIC",
    "SERVICE",
    "Handler",
    "count_quarantined",
    "emit_metric",
    "traced",
    "tracer",
]

SERVICE = "order-router"
NAMESPACE = "OrderRouter"

Handler = Callable[[dict[str, Any], Any], Any]


@cache
def tracer() -> Any:
    """The process's Tracer (X-Ray), built on first use."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def traced(handler: Handler) -> Handler:
    """Wrap a Lambda handler with ``Tracer.capture_lambda_handler`` on its first call."""
    wrapped: list[Handler] = []

    @wraps(handler)
    def invoke(event: dict[str, Any], context: Any) -> Any:
        if not wrapped:
            wrapped.append(tracer().capture_lambda_handler(handler))
        return wrapped[0](event, context)

    return invoke


def emit_metric(
    name: str,
    value: float,
    *,
    service: str = SERVICE,
    dimensions: Mapping[str, str] | None = None,
    unit: str = "Count",
) -> None:
    """Publish one metric now, with its own dimensions (an EMF line on stdout).

    For code that runs inside any handler (the notifier, the connection service) and so cannot
    rely on that handler's ``@log_metrics`` flush, and for a metric whose dimension (a
    strategy, a reason) must not be added to the invocation's other metrics.
    """
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=name,
        unit=MetricUnit(unit),
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": service},
    ) as metric:
        for key, dimension in (dimensions or {}).items():
            metric.add_dimension(name=key, value=dimension)


def count_quarantined(metrics: Any, reasons: Iterable[str]) -> None:
    """Count quarantined reports by service (what the alarm watches) and by reason.

    An alarm needs one exact dimension set, while an operator wants the reasons apart, so each
    count is emitted twice: on the handler's ``Metrics`` (``service``) and with
    :func:`emit_metric` (``service`` and ``reason``).

    Parameters
    ----------
    metrics
        The handler's Powertools ``Metrics``.
    reasons
        One quarantine reason per quarantined report.
    """
    from aws_lambda_powertools.metrics import MetricUnit

    for reason, count in Counter(reasons).items():
        metrics.add_metric(QUARANTINED_REPORTS_METRIC, MetricUnit.Count, count)
        emit_metric(QUARANTINED_REPORTS_METRIC, count, dimensions={"reason": reason})
