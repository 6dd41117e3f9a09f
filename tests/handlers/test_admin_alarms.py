"""GET /api/v1/admin/alarms through admin.lambda_handler: CloudWatch (moto), local mode (Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import shared.wiring
from functions.admin import handler as admin
from local.services import free_port
from shared.adapters.cloudwatch_alarms import CloudWatchAlarmStatus
from shared.adapters.redis.metrics import RedisMetricStore
from shared.domain.alarms import ALARM_DEFINITIONS, MetricPoint
from shared.domain.contracts import ApiPath
from shared.settings import Settings
from shared.wiring import Wiring
from tests.handlers.support import ADMIN, TRADER, call, handler_settings

ALARMS = str(ApiPath.ADMIN_ALARMS)
PREFIX = "order-router-test-"
REGION = "ap-south-1"


def _wire(monkeypatch: pytest.MonkeyPatch, settings: Settings, **overrides: Any) -> Wiring:
    built = Wiring(settings, **overrides)
    monkeypatch.setattr(shared.wiring, "get_wiring", lambda: built)
    return built


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def test_admin_sees_cloudwatch_alarm_states(
    cloudwatch: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the stack's alarms in CloudWatch, QuarantinedReports in ALARM
    for definition in ALARM_DEFINITIONS:
        cloudwatch.put_metric_alarm(
            AlarmName=f"{PREFIX}{definition.name}",
            Namespace="OrderRouter",
            MetricName=definition.metric,
            Statistic="Sum",
            Period=definition.period_s,
            EvaluationPeriods=1,
            Threshold=definition.threshold,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(
        AlarmName=f"{PREFIX}QuarantinedReports", StateValue="ALARM", StateReason="held a report"
    )
    _wire(
        monkeypatch,
        handler_settings(settings, alarm_source="cloudwatch", alarm_name_prefix=PREFIX),
    )
    # WHEN an operator asks for the alarms
    status, body, _ = call(admin, "GET", ALARMS, claims=ADMIN)
    # THEN 200 with every alarm, camelCase, QuarantinedReports in ALARM with its reason
    assert status == 200, body
    assert body["source"] == "cloudwatch"
    by_name = {a["name"]: a for a in body["alarms"]}
    assert len(by_name) == len(ALARM_DEFINITIONS)
    assert (by_name["QuarantinedReports"]["state"], by_name["QuarantinedReports"]["reason"]) == (
        "ALARM",
        "held a report",
    )
    assert {"updatedAt", "guards", "threshold", "periodS", "comparison"} <= set(by_name["DlqDepth"])


def test_local_mode_alarm_from_emitted_metrics(
    settings: Settings, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN local mode's metric store holding one quarantined report just now
    import time

    built = _wire(monkeypatch, handler_settings(settings, alarm_source="local"))
    RedisMetricStore(redis_client, prefix=settings.redis_key_prefix).record(
        [
            MetricPoint(
                "OrderRouter",
                "QuarantinedReports",
                (("service", built.settings.service_name),),
                int(time.time() * 1000),
                1.0,
            )
        ]
    )
    # WHEN an operator asks THEN QuarantinedReports is in ALARM, evaluated locally
    status, body, _ = call(admin, "GET", ALARMS, claims=ADMIN)
    assert status == 200, body
    assert body["source"] == "local"
    by_name = {a["name"]: a for a in body["alarms"]}
    assert by_name["QuarantinedReports"]["state"] == "ALARM"
    assert by_name["DlqDepth"]["state"] == "INSUFFICIENT_DATA"


def test_no_token_is_401_and_a_trader_is_403(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the admin function WHEN asked without claims or by a trader
    _wire(monkeypatch, handler_settings(settings, alarm_source="local"))
    anonymous, body, _ = call(admin, "GET", ALARMS, claims=None)
    trader, trader_body, _ = call(admin, "GET", ALARMS, claims=TRADER)
    # THEN 401 and 403 in the one error shape
    assert anonymous == 401, body
    assert body["error"]["code"]
    assert trader == 403, trader_body
    assert trader_body["error"]["code"] == "FORBIDDEN"


def test_cloudwatch_down_is_503_with_retry_after(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN CloudWatch not answering
    client = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    _wire(
        monkeypatch,
        handler_settings(settings, alarm_source="cloudwatch", alarm_name_prefix=PREFIX),
        alarm_status=CloudWatchAlarmStatus(PREFIX, client=client),
    )
    # WHEN an operator asks THEN 503 in the one error shape, with Retry-After, no driver detail
    status, body, headers = call(admin, "GET", ALARMS, claims=ADMIN)
    assert status == 503, body
    assert body["error"]["code"] == "MONITORING_UNAVAILABLE"
    assert "Endpoint" not in body["error"]["message"]
    assert headers["Retry-After"]


def test_no_alarm_source_is_503(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a function deployed without an alarm source WHEN asked THEN 503, not a 500
    _wire(monkeypatch, handler_settings(settings))
    status, body, _ = call(admin, "GET", ALARMS, claims=ADMIN)
    assert status == 503, body
    assert body["error"]["code"] == "MONITORING_UNAVAILABLE"
