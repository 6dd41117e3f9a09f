"""reconcile: on a schedule, finishes orders whose process died before placing them.

See :mod:`shared.services.reconcile`: children left ``PENDING`` past ``reconcile_after_s`` are
looked up at their brokers and settled, and the order gets its final answer. Then children
without a terminal report past ``poll_after_s`` are polled (:mod:`shared.services.polling`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import shared.wiring
from shared.observability import NAMESPACE, SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

MIN_REMAINING_MS = 10_000
"""Time kept free at the end of a run: an order being settled may wait on broker look-ups."""


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Settle stuck orders while time remains; the next run takes what is left."""
    time_left_s = max(0.0, (context.get_remaining_time_in_millis() - MIN_REMAINING_MS) / 1000)
    report = shared.wiring.get_wiring().reconciler.run(time_left_s=time_left_s)
    metrics.add_metric("OrdersReconciled", MetricUnit.Count, report.orders)
    metrics.add_metric("ChildrenNeverPlaced", MetricUnit.Count, report.never_placed)
    metrics.add_metric("ChildrenUnconfirmed", MetricUnit.Count, report.unconfirmed)
    metrics.add_metric("ChildrenPolled", MetricUnit.Count, report.polling.polled)
    metrics.add_metric("ReportsRecoveredByPolling", MetricUnit.Count, report.polling.recovered)
    if report.orders:
        logger.warning(
            "reconciled stuck orders",
            orders=report.orders,
            adopted=report.adopted,
            never_placed=report.never_placed,
            unconfirmed=report.unconfirmed,
        )
    if report.polling.recovered:
        logger.warning(
            "recovered reports by polling",
            polled=report.polling.polled,
            recovered=report.polling.recovered,
        )
    return {
        "orders": report.orders,
        "adopted": report.adopted,
        "neverPlaced": report.never_placed,
        "unconfirmed": report.unconfirmed,
        "polled": report.polling.polled,
        "recovered": report.polling.recovered,
        "notFound": report.polling.not_found,
        "unanswered": report.polling.unanswered,
    }
