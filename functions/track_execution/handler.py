"""track_execution: ``ExecutionReported`` and ``OrderRouted`` events from EventBridge or MSK.

EventBridge invokes with one event; the MSK event source with a batch whose record values carry
the same JSON envelope (``detail-type`` + ``detail``). A batch's execution reports are tracked
together in one transaction (the throughput target needs round trips per batch, not per report),
and it answers ``batchItemFailures`` so one poison record is retried (and dead-lettered) alone
instead of replaying the whole batch.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import singledispatch
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEvent, KafkaEventRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.domain.contracts import (
    ChildOrderPlacedPayload,
    DetailType,
    EventPayload,
    EventSource,
    ExecutionReportedPayload,
    OrderRoutedPayload,
    read_payload,
)
from shared.domain.errors import DataUnavailableError
from shared.domain.execution import ExecutionReport
from shared.observability import NAMESPACE, SERVICE, count_quarantined, traced
from shared.ports import TrackedExecution

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
processor = BatchProcessor(event_type=EventType.Kafka)

KAFKA_SOURCES = ("aws:kafka", "SelfManagedKafka")
LATE_FILLS_METRIC = "LateFillsAfterTimeout"
"""Reports for children that had timed out and whose quantity was cascaded."""


class UnknownEventError(ValueError):
    """An envelope without a detail type this function handles."""


def handle_event(detail_type: str, detail: Mapping[str, Any]) -> str:
    """Route one event to the tracker; return what happened (for logs and metrics).

    Raises
    ------
    UnknownDetailTypeError
        ``detail_type`` is no contract's (:mod:`shared.domain.contracts`).
    UnknownEventError
        A contract's event this function does not handle.
    pydantic.ValidationError
        The detail breaks its payload's model.
    """
    return _handle(read_payload(detail_type, detail), detail)


@singledispatch
def _handle(payload: EventPayload, detail: Mapping[str, Any]) -> str:
    raise UnknownEventError(f"unhandled detail-type {payload.detail_type!r}")


@_handle.register
def _execution_reported(payload: ExecutionReportedPayload, detail: Mapping[str, Any]) -> str:
    from shared.wiring import get_wiring

    tracked = get_wiring().tracker.track(payload.report)
    _count([tracked])
    return tracked.status


@_handle.register
def _order_routed(payload: OrderRoutedPayload, detail: Mapping[str, Any]) -> str:
    from shared.wiring import get_wiring

    get_wiring().tracker.order_routed(detail)
    return "notified"


@_handle.register
def _child_placed(payload: ChildOrderPlacedPayload, detail: Mapping[str, Any]) -> str:
    from shared.wiring import get_wiring

    # A placement's reject, timeout or cascade is pushed as ORDER_UPDATE (docs/websocket.md).
    get_wiring().tracker.child_placed(payload.child)
    return "notified"


def handled_events() -> frozenset[tuple[EventSource, DetailType]]:
    """The ``(source, detail-type)`` pairs this function handles (the stack's rules must match)."""
    return frozenset(
        (model.source, model.detail_type)
        for model in _handle.registry
        if model is not object and issubclass(model, EventPayload)
    )


RecordKey = tuple[str, int, int]
Outcome = str | Exception


def _key(record: KafkaEventRecord) -> RecordKey:
    return (record.topic, record.partition, record.offset)


def track_kafka_batch(records: Iterable[KafkaEventRecord]) -> dict[RecordKey, Outcome]:
    """Handle a whole MSK batch: its execution reports in one tracker call, in record order.

    Reports are folded together (a handful of round trips per batch, see
    ``ExecutionTracker.track_batch``); any other event is handled on its own.

    Parameters
    ----------
    records
        The batch's records, in partition and offset order.

    Returns
    -------
    dict[RecordKey, Outcome]
        Per ``(topic, partition, offset)``: what happened (``recorded``, ``duplicate``...), or
        the exception that makes the record a batch item failure. When Postgres is unreachable,
        every report's outcome is that error, so the whole batch is retried.
    """
    from shared.wiring import get_wiring

    outcomes: dict[RecordKey, Outcome] = {}
    reports: list[tuple[RecordKey, ExecutionReport]] = []
    for record in records:
        key = _key(record)
        # Like the batch processor, any failure of one record fails that record only.
        try:
            envelope = json.loads(record.decoded_value)
            detail_type, detail = envelope["detail-type"], envelope["detail"]
            payload = read_payload(detail_type, detail)
            if isinstance(payload, ExecutionReportedPayload):
                reports.append((key, payload.report))
            else:
                outcomes[key] = _handle(payload, detail)
        except Exception as exc:  # reported as this record's failure
            outcomes[key] = exc
    if reports:
        try:
            tracked: Sequence[TrackedExecution | Exception] = list(
                get_wiring().tracker.track_batch([r for _, r in reports])
            )
        except DataUnavailableError as exc:
            tracked = [exc] * len(reports)
        for (key, _), outcome in zip(reports, tracked, strict=True):
            outcomes[key] = outcome if isinstance(outcome, Exception) else outcome.status
        _count([t for t in tracked if isinstance(t, TrackedExecution)])
    return outcomes


def _count(tracked: Sequence[TrackedExecution]) -> None:
    for status, count in Counter(t.status for t in tracked).items():
        metrics.add_metric(f"Executions_{status}", MetricUnit.Count, count)
    # Alarm material: each one may have over-filled its order (see UPDATE_ORDER_STATUS).
    late = sum(t.late for t in tracked)
    if late:
        metrics.add_metric(LATE_FILLS_METRIC, MetricUnit.Count, late)
    count_quarantined(
        metrics, [t.reason or "UNKNOWN" for t in tracked if t.status == "quarantined"]
    )


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for both event sources."""
    if event.get("eventSource") in KAFKA_SOURCES:
        outcomes = track_kafka_batch(KafkaEvent(event).records)

        def replay(record: KafkaEventRecord) -> str:
            # The batch processor only reports what track_kafka_batch decided, so the response
            # keeps its exact shape (and its "every record failed" error) for the event source.
            outcome = outcomes[_key(record)]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return dict(
            process_partial_response(
                event=event, record_handler=replay, processor=processor, context=context
            )
        )
    logger.append_keys(order_id=event.get("detail", {}).get("order_id"))
    outcome = handle_event(event["detail-type"], event["detail"])
    logger.info("event handled", detail_type=event["detail-type"], outcome=outcome)
    return {"outcome": outcome}
