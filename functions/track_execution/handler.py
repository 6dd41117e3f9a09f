"""track_execution: ``ExecutionReported`` and ``OrderRouted`` events from EventBridge or MSK.

EventBridge invokes with one event; the MSK event source with a batch whose record values carry
the same JSON envelope (``detail-type`` + ``detail``). A batch answers ``batchItemFailures`` so one
poison record is retried (and dead-lettered) alone instead of replaying the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.domain.execution import ExecutionReport
from shared.observability import NAMESPACE, SERVICE, traced

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
processor = BatchProcessor(event_type=EventType.Kafka)

KAFKA_SOURCES = ("aws:kafka", "SelfManagedKafka")


class UnknownEventError(ValueError):
    """An envelope without a detail type this function handles."""


def handle_event(detail_type: str, detail: Mapping[str, Any]) -> str:
    """Route one event to the tracker; return what happened (for logs and metrics)."""
    from shared.wiring import get_wiring

    tracker = get_wiring().tracker
    if detail_type == "ExecutionReported":
        report = ExecutionReport.model_validate(detail["report"])
        outcome = tracker.track(report).status
        metrics.add_metric(f"Executions_{outcome}", MetricUnit.Count, 1)
        return outcome
    if detail_type == "OrderRouted":
        tracker.order_routed(detail)
        return "notified"
    raise UnknownEventError(f"unhandled detail-type {detail_type!r}")


def _record_handler(record: KafkaEventRecord) -> str:
    envelope = json.loads(record.decoded_value)
    return handle_event(envelope["detail-type"], envelope["detail"])


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for both event sources."""
    if event.get("eventSource") in KAFKA_SOURCES:
        return dict(
            process_partial_response(
                event=event, record_handler=_record_handler, processor=processor, context=context
            )
        )
    logger.append_keys(order_id=event.get("detail", {}).get("order_id"))
    outcome = handle_event(event["detail-type"], event["detail"])
    logger.info("event handled", detail_type=event["detail-type"], outcome=outcome)
    return {"outcome": outcome}
