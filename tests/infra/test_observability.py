"""Observability: the nine alarms, the alarm topic and the dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from functions.track_execution.handler import LATE_FILLS_METRIC
from infra.observability import ORDER_LATENCY_P90_MS, ROUTING_LATENCY_P95_MS
from shared.observability import QUARANTINED_REPORTS_METRIC
from tests.infra.support import function_by_handler, one, resources


def _alarms(template: Template) -> list[dict[str, Any]]:
    return [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]


def test_routing_latency_p95_alarm(dev: Template) -> None:
    # GIVEN the Powertools metric WHEN synthesized THEN p95 RoutingLatency > 50 ms alarms
    (alarm,) = [a for a in _alarms(dev) if a.get("MetricName") == "RoutingLatency"]
    assert alarm["Namespace"] == "OrderRouter"
    assert alarm["ExtendedStatistic"] == "p95"
    assert alarm["Threshold"] == ROUTING_LATENCY_P95_MS
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "order-router"}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_execution_latency_p90_alarm(dev: Template) -> None:
    # GIVEN route_order's OrderLatency (a smart order routed and placed) WHEN synthesized
    (alarm,) = [a for a in _alarms(dev) if a.get("MetricName") == "OrderLatency"]
    # THEN its p90 above the specification's 200 ms for 3 of 5 minutes alarms
    assert ORDER_LATENCY_P90_MS == 200
    assert alarm["Namespace"] == "OrderRouter"
    assert alarm["ExtendedStatistic"] == "p90"
    assert alarm["Threshold"] == ORDER_LATENCY_P90_MS
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5, 3)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "order-router"}]


def test_route_order_throttles_alarm(dev: Template) -> None:
    # GIVEN route_order's reserved concurrency WHEN synthesized
    route_id, _ = function_by_handler(dev, "route_order")
    (alarm,) = [a for a in _alarms(dev) if a.get("MetricName") == "Throttles"]
    # THEN any invocation Lambda refused for it alarms at once
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": route_id}}]
    assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (0, 1)


def test_failure_alarms(dev: Template) -> None:
    # GIVEN the failure signals WHEN synthesized THEN 5xx rate, DLQ depth, tracker errors,
    # late fills after a timeout, quarantined reports and WebSocket push failures each have an
    # alarm that notifies the topic
    alarms = _alarms(dev)
    topic_id, _ = one(dev, "AWS::SNS::Topic")
    tracker_id, _ = function_by_handler(dev, "track_execution")
    by_metric = {a.get("MetricName"): a for a in alarms}
    assert by_metric["ApproximateNumberOfMessagesVisible"]["Threshold"] == 0
    assert by_metric["Errors"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": tracker_id}}
    ]
    assert by_metric["WebSocketPushFailures"]["Namespace"] == "OrderRouter"
    (rate,) = [a for a in alarms if "Metrics" in a]
    expressions = [m["Expression"] for m in rate["Metrics"] if "Expression" in m]
    assert expressions == ["IF(requests > 0, 100 * errors / requests, 0)"]
    assert by_metric[LATE_FILLS_METRIC]["Threshold"] == 0
    # The alarm watches the service-level count (the handlers also emit it by reason).
    assert by_metric[QUARANTINED_REPORTS_METRIC]["Threshold"] == 0
    assert by_metric[QUARANTINED_REPORTS_METRIC]["Dimensions"] == [
        {"Name": "service", "Value": "order-router"}
    ]
    assert len(alarms) == 9
    assert all(a["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)


def test_dashboard_exists(dev: Template) -> None:
    # GIVEN the stack WHEN synthesized THEN one dashboard shows the service metrics
    _, dashboard = one(dev, "AWS::CloudWatch::Dashboard")
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("RoutingLatency", "RoutingDecisions", "BrokerRejects", "ActiveConnections"):
        assert metric in body
