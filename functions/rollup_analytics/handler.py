"""rollup_analytics: on a schedule, rolls closed hours up, creates partitions, applies retention.

See :mod:`shared.services.rollup` and docs/data-layer.md, "Partitions, retention and roll-ups".
The event is ignored: every run works out from the watermark what is left to do, so a missed
or repeated run is harmless.
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


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run the roll-up job once and report what it did."""
    report = shared.wiring.get_wiring().rollup_job.run()
    metrics.add_metric("RollupHourlyRows", MetricUnit.Count, report.hourly_rows)
    metrics.add_metric("PartitionsCreated", MetricUnit.Count, report.partitions_created)
    metrics.add_metric("PartitionsDropped", MetricUnit.Count, report.partitions_dropped)
    logger.info(
        "analytics roll-up",
        rolled_from=report.rolled_from,
        rolled_to=report.rolled_to,
        hourly_rows=report.hourly_rows,
    )
    return {
        "rolledFrom": None if report.rolled_from is None else report.rolled_from.isoformat(),
        "rolledTo": None if report.rolled_to is None else report.rolled_to.isoformat(),
        "hourlyRows": report.hourly_rows,
        "partitionsCreated": report.partitions_created,
        "partitionsDropped": report.partitions_dropped,
    }
