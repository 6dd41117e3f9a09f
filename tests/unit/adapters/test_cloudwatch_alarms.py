"""CloudWatchAlarmStatus against moto's CloudWatch (no AWS here), and CloudWatch down."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws

from local.services import free_port
from shared.adapters.cloudwatch_alarms import CloudWatchAlarmStatus
from shared.domain.alarms import ALARM_DEFINITIONS, AlarmState
from shared.domain.errors import MonitoringUnavailableError

PREFIX = "order-router-test-"
REGION = "ap-south-1"


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def _put(client: Any, name: str) -> None:
    client.put_metric_alarm(
        AlarmName=name,
        Namespace="OrderRouter",
        MetricName="X",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_states_reasons_and_times_of_the_stacks_alarms(cloudwatch: Any) -> None:
    # GIVEN the stack's alarms in CloudWatch, one in ALARM and one with too little data, and
    # an alarm of another stack
    for definition in ALARM_DEFINITIONS:
        _put(cloudwatch, f"{PREFIX}{definition.name}")
    _put(cloudwatch, "order-router-prod-QuarantinedReports")
    cloudwatch.set_alarm_state(
        AlarmName=f"{PREFIX}QuarantinedReports",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [2.0] was greater than the threshold (0.0).",
    )
    cloudwatch.set_alarm_state(
        AlarmName=f"{PREFIX}RoutingLatencyP95",
        StateValue="INSUFFICIENT_DATA",
        StateReason="Insufficient Data: 5 datapoints were unknown.",
    )
    cloudwatch.set_alarm_state(
        AlarmName=f"{PREFIX}DlqDepth", StateValue="OK", StateReason="back to normal"
    )
    # WHEN summarised
    summary = CloudWatchAlarmStatus(PREFIX, client=cloudwatch).summary()
    # THEN every defined alarm is there once, in the table's order, with CloudWatch's state
    by_name = {a.name: a for a in summary.alarms}
    assert [a.name for a in summary.alarms] == [d.name for d in ALARM_DEFINITIONS]
    assert summary.source == "cloudwatch"
    quarantined = by_name["QuarantinedReports"]
    assert quarantined.state is AlarmState.ALARM
    assert quarantined.reason.startswith("Threshold Crossed")
    assert quarantined.updated_at.tzinfo is not None
    assert quarantined.guards
    assert by_name["RoutingLatencyP95"].state is AlarmState.INSUFFICIENT_DATA
    assert (by_name["DlqDepth"].state, by_name["DlqDepth"].reason) == (
        AlarmState.OK,
        "back to normal",
    )


def test_an_alarm_missing_from_cloudwatch_says_so(cloudwatch: Any) -> None:
    # GIVEN a stack whose alarms are not deployed (only one is)
    _put(cloudwatch, f"{PREFIX}DlqDepth")
    # WHEN summarised THEN the others are INSUFFICIENT_DATA naming the missing alarm
    summary = CloudWatchAlarmStatus(PREFIX, client=cloudwatch).summary()
    missing = [a for a in summary.alarms if a.name != "DlqDepth"]
    assert {a.state for a in missing} == {AlarmState.INSUFFICIENT_DATA}
    assert f"No alarm named {PREFIX}QuarantinedReports" in missing[-2].reason


def test_every_page_is_read_with_the_prefix() -> None:
    # GIVEN DescribeAlarms answering in two pages (moto does not paginate it: a stubbed client)
    client = boto3.client(
        "cloudwatch",
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    updated = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def alarm(name: str, state: str) -> dict[str, Any]:
        return {
            "AlarmName": f"{PREFIX}{name}",
            "StateValue": state,
            "StateReason": f"{name} is {state}",
            "StateUpdatedTimestamp": updated,
        }

    expected = {"AlarmNamePrefix": PREFIX, "AlarmTypes": ["MetricAlarm"]}
    with Stubber(client) as stub:
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [alarm("DlqDepth", "ALARM")], "NextToken": "page-2"},
            expected,
        )
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [alarm("QuarantinedReports", "OK")]},
            {**expected, "NextToken": "page-2"},
        )
        # WHEN summarised
        summary = CloudWatchAlarmStatus(PREFIX, client=client).summary()
        stub.assert_no_pending_responses()
    # THEN alarms of both pages are there
    by_name = {a.name: a for a in summary.alarms}
    assert by_name["DlqDepth"].state is AlarmState.ALARM
    assert by_name["QuarantinedReports"].state is AlarmState.OK
    assert by_name["QuarantinedReports"].updated_at == updated


@pytest.mark.parametrize("error", ["AccessDenied", "Throttling"])
def test_cloudwatch_refusing_is_unavailable(error: str) -> None:
    # GIVEN CloudWatch refusing the call (a missing grant, throttling)
    client = boto3.client(
        "cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_client_error("describe_alarms", service_error_code=error, http_status_code=403)
        # WHEN summarised THEN the domain's unavailable error (503), naming the driver error
        with pytest.raises(MonitoringUnavailableError, match="ClientError"):
            CloudWatchAlarmStatus(PREFIX, client=client).summary()


def test_cloudwatch_down_is_unavailable() -> None:
    # GIVEN a CloudWatch endpoint nobody listens on
    client = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
    )
    # WHEN summarised THEN MonitoringUnavailableError, not a driver exception
    with pytest.raises(MonitoringUnavailableError, match="EndpointConnectionError"):
        CloudWatchAlarmStatus(PREFIX, client=client).summary()


def test_a_prefix_is_required() -> None:
    with pytest.raises(ValueError, match="prefix"):
        CloudWatchAlarmStatus("")
