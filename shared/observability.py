"""Powertools Tracer for the handlers, created on the first invocation rather than at import.

Creating a ``Tracer`` imports the X-Ray SDK, which imports botocore: about half of a handler's
import time. Module import then stays small (and so do the tests and tools that import handler
modules), and the SDK loads once per container when the first invocation is traced. The total
cold start is the same; what changes is that nothing pays for tracing that is never invoked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache, wraps
from typing import Any

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


QUARANTINED_REPORTS_METRIC = "QuarantinedReports"
"""Execution reports held in quarantine (the webhook's and the tracker's), alarmed on."""


def count_quarantined(metrics: Any, reasons: Iterable[str]) -> None:
    """Count quarantined reports by service (what the alarm watches) and by reason.

    An alarm needs one exact dimension set, while an operator wants the reasons apart, so each
    count is emitted twice: on the handler's ``Metrics`` (``service``) and as a single metric
    with ``service`` and ``reason``.

    Parameters
    ----------
    metrics
        The handler's Powertools ``Metrics``.
    reasons
        One quarantine reason per quarantined report.
    """
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for reason, count in Counter(reasons).items():
        metrics.add_metric(QUARANTINED_REPORTS_METRIC, MetricUnit.Count, count)
        with single_metric(
            name=QUARANTINED_REPORTS_METRIC,
            unit=MetricUnit.Count,
            value=count,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension("reason", reason)
