"""Events: custom bus, tracker rules with retries and DLQ, relay schedule, optional MSK."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from infra.events import MSK_BATCH_SIZE, MSK_TOPIC, RETRY_ATTEMPTS
from shared.domain.contracts import DetailType, EventSource
from tests.infra.support import MSK_ARN, function_by_handler, one, resources


def test_tracker_rules_retry_then_dead_letter(dev: Template) -> None:
    # GIVEN the custom bus WHEN synthesized THEN both detail types reach track_execution with
    # a retry policy and the SQS DLQ
    bus_id, _ = one(dev, "AWS::Events::EventBus")
    tracker_id, _ = function_by_handler(dev, "track_execution")
    dlq_id, _ = one(dev, "AWS::SQS::Queue")
    patterns = {}
    for rule in resources(dev, "AWS::Events::Rule").values():
        props = rule["Properties"]
        if props.get("EventBusName") != {"Ref": bus_id}:
            continue
        pattern = props["EventPattern"]
        patterns[pattern["detail-type"][0]] = pattern["source"][0]
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [tracker_id, "Arn"]}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == RETRY_ATTEMPTS
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert patterns == {
        DetailType.EXECUTION_REPORTED: EventSource.BROKERS,
        DetailType.ORDER_ROUTED: EventSource.ROUTING,
    }


def test_tracker_async_failures_also_reach_the_dlq(dev: Template) -> None:
    # GIVEN an event the function itself fails on WHEN Lambda's retries run out
    # THEN the same DLQ receives it
    dlq_id, _ = one(dev, "AWS::SQS::Queue")
    _, tracker = function_by_handler(dev, "track_execution")
    assert tracker["Properties"]["DeadLetterConfig"]["TargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}


@pytest.mark.parametrize("function", ["outbox_relay", "reconcile"])
def test_scheduled_functions_run_every_minute(dev: Template, function: str) -> None:
    # GIVEN the relay and the reconciler WHEN synthesized THEN a one-minute schedule targets each
    relay_id, _ = function_by_handler(dev, function)
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [
                {
                    "Arn": {"Fn::GetAtt": [relay_id, "Arn"]},
                    "Id": "Target0",
                    "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60},
                }
            ],
        },
    )


def test_rollup_runs_every_fifteen_minutes_without_retries(dev: Template) -> None:
    # GIVEN the analytics roll-up WHEN synthesized
    # THEN a 15-minute schedule targets it, with no retries (the next run redoes the same hours)
    rollup_id, _ = function_by_handler(dev, "rollup_analytics")
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(15 minutes)",
            "Targets": [
                {
                    "Arn": {"Fn::GetAtt": [rollup_id, "Arn"]},
                    "Id": "Target0",
                    "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 900},
                }
            ],
        },
    )


def test_msk_source_only_with_the_flag(dev: Template, prod: Template) -> None:
    # GIVEN dev without and prod with mskClusterArn WHEN synthesized
    # THEN only prod maps order-executions to the tracker, 100 per batch, partial failures
    assert resources(dev, "AWS::Lambda::EventSourceMapping") == {}
    _, mapping = one(prod, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    assert props["EventSourceArn"] == MSK_ARN
    assert props["Topics"] == [MSK_TOPIC]
    assert props["BatchSize"] == MSK_BATCH_SIZE
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
