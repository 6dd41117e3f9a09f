"""outbox_relay: on a schedule, publishes events that the writer could not publish after commit."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import NAMESPACE, SERVICE
from shared.wiring import get_wiring

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

BATCH = 100
MIN_REMAINING_MS = 10_000


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Drain the outbox in batches while time remains; failures stay for the next run."""
    wiring = get_wiring()
    published = failed = 0
    while context.get_remaining_time_in_millis() > MIN_REMAINING_MS:
        sent, not_sent = wiring.outbox.relay(wiring.publisher.publish, limit=BATCH)
        published += sent
        failed += not_sent
        if sent + not_sent < BATCH or not_sent:
            break
    metrics.add_metric("OutboxRelayed", MetricUnit.Count, published)
    metrics.add_metric("OutboxRelayFailures", MetricUnit.Count, failed)
    logger.info("outbox relayed", published=published, failed=failed)
    return {"published": published, "failed": failed}
