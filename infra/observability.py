"""Observability: alarms on the service's SLOs and failure signals, and one dashboard."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag, target
from infra.config import DeployConfig
from shared.domain.alarms import (
    ALARM_DEFINITIONS,
    HTTP_5XX_RATE_PERCENT,
    ORDER_LATENCY_P90_MS,
    ROUTING_LATENCY_P95_MS,
    AlarmDefinition,
)

__all__ = [
    "HTTP_5XX_RATE_PERCENT",
    "ORDER_LATENCY_P90_MS",
    "ROUTING_LATENCY_P95_MS",
    "Observability",
    "alarm_name_prefix",
    "service_metric",
]
_DIMENSIONS = {"service": target.SERVICE_NAME}
_DEFINITIONS = {d.name: d for d in ALARM_DEFINITIONS}


def alarm_name_prefix(stage: str) -> str:
    """The prefix of every alarm name of a stage's stack (the admin function lists by it)."""
    return f"order-router-{stage}-"


def _service_metric(definition: AlarmDefinition) -> cw.Metric:
    return service_metric(definition.metric, definition.statistic, definition.period_s)


def _lambda_metric(
    functions: dict[str, lambda_.Function], definition: AlarmDefinition
) -> cw.Metric:
    assert definition.function is not None, definition.name
    return functions[definition.function].metric(
        definition.metric,
        period=cdk.Duration.seconds(definition.period_s),
        statistic=definition.statistic,
    )


def service_metric(name: str, statistic: str = "Sum", period_s: int = 60) -> cw.Metric:
    """A Powertools EMF metric of the service (namespace OrderRouter, service dimension).

    Parameters
    ----------
    name
        Metric name, e.g. ``RoutingLatency``.
    statistic
        CloudWatch statistic (``Sum``, ``p95``…).
    period_s
        Period in seconds.

    Returns
    -------
    aws_cdk.aws_cloudwatch.Metric
        The metric.
    """
    return cw.Metric(
        namespace=target.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=_DIMENSIONS,
        statistic=statistic,
        period=cdk.Duration.seconds(period_s),
    )


class Observability(Construct):
    """Alarms (to an SNS topic) and the operations dashboard.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options (optional alarm e-mail).
    http_api
        The HTTP API (5xx rate).
    dlq
        The tracker's dead-letter queue.
    functions
        Every function by name (``track_execution`` gets an error alarm, all are graphed).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        http_api: apigwv2.HttpApi,
        dlq: sqs.IQueue,
        functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        alarm_prefix = alarm_name_prefix(config.stage)
        self.topic = sns.Topic(self, "AlarmTopic", enforce_ssl=True)
        nag.acknowledge(
            self.topic,
            "SNS2",
            "CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key "
            "and the messages are alarm state changes only, so a customer key buys nothing.",
        )
        nag.skip_checkov(
            self.topic,
            "CKV_AWS_26",
            "CloudWatch alarms cannot publish to a topic under the AWS-managed SNS key, and the "
            "messages are alarm state changes that carry no trading data.",
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        action = cw_actions.SnsAction(self.topic)

        rate = _DEFINITIONS["Http5xxRate"]
        requests = http_api.metric_count(
            period=cdk.Duration.seconds(rate.period_s), statistic="Sum"
        )
        errors = http_api.metric_server_error(
            period=cdk.Duration.seconds(rate.period_s), statistic="Sum"
        )
        five_xx_rate = cw.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"requests": requests, "errors": errors},
            label="5xx %",
            period=cdk.Duration.seconds(rate.period_s),
        )
        depth = _DEFINITIONS["DlqDepth"]
        dlq_depth = dlq.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.seconds(depth.period_s), statistic=depth.statistic
        )
        tracker_errors = _lambda_metric(functions, _DEFINITIONS["TrackExecutionErrors"])
        latency_p95 = _service_metric(_DEFINITIONS["RoutingLatencyP95"])
        order_latency_p90 = _service_metric(_DEFINITIONS["OrderLatencyP90"])
        route_throttles = _lambda_metric(functions, _DEFINITIONS["RouteOrderThrottles"])
        push_failures = _service_metric(_DEFINITIONS["WebSocketPushFailures"])
        late_fills = _service_metric(_DEFINITIONS["LateFillsAfterTimeout"])
        quarantined = _service_metric(_DEFINITIONS["QuarantinedReports"])

        # The metric of each source; thresholds, statistics and periods come from the table
        # local mode evaluates too (shared/domain/alarms.py), so the two cannot drift.
        metrics: dict[str, cw.IMetric] = {
            "RoutingLatencyP95": latency_p95,
            "OrderLatencyP90": order_latency_p90,
            "RouteOrderThrottles": route_throttles,
            "Http5xxRate": five_xx_rate,
            "DlqDepth": dlq_depth,
            "TrackExecutionErrors": tracker_errors,
            "LateFillsAfterTimeout": late_fills,
            "QuarantinedReports": quarantined,
            "WebSocketPushFailures": push_failures,
        }
        self.alarms = {
            d.name: cw.Alarm(
                self,
                d.name,
                alarm_name=f"{alarm_prefix}{d.name}",
                alarm_description=d.description,
                metric=metrics[d.name],
                threshold=d.threshold,
                comparison_operator=cw.ComparisonOperator[d.comparison.name],
                evaluation_periods=d.evaluation_periods,
                datapoints_to_alarm=d.datapoints_to_alarm if d.evaluation_periods > 1 else None,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            for d in ALARM_DEFINITIONS
        }
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"order-router-{config.stage}"
        )
        decisions = cw.MathExpression(
            expression=(
                f"SEARCH('{{{target.METRICS_NAMESPACE},service,strategy}} "
                f"MetricName=\"RoutingDecisions\"', 'Sum', 60)"
            ),
            label="",
            period=cdk.Duration.minutes(1),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Routing latency (ms)",
                left=[
                    service_metric("RoutingLatency", "p50"),
                    latency_p95,
                    service_metric("RoutingLatency", "p99"),
                    order_latency_p90,
                ],
                left_annotations=[
                    cw.HorizontalAnnotation(value=ROUTING_LATENCY_P95_MS, label="p95 SLO"),
                    cw.HorizontalAnnotation(value=ORDER_LATENCY_P90_MS, label="execution p90 SLO"),
                ],
            ),
            cw.GraphWidget(title="Routing decisions by strategy", left=[decisions]),
            cw.GraphWidget(
                title="Broker rejects and cascades",
                left=[service_metric("BrokerRejects"), service_metric("OrdersCascaded")],
            ),
            cw.GraphWidget(
                title="WebSocket",
                left=[service_metric("ActiveConnections", "Maximum")],
                right=[push_failures],
            ),
            cw.GraphWidget(title="HTTP API", left=[requests], right=[five_xx_rate]),
            cw.GraphWidget(title="Tracker DLQ depth", left=[dlq_depth]),
            cw.GraphWidget(
                title="Function errors",
                left=[
                    fn.metric_errors(period=cdk.Duration.minutes(1), label=name)
                    for name, fn in functions.items()
                ],
            ),
            cw.GraphWidget(
                title="Function duration p95",
                left=[
                    fn.metric_duration(period=cdk.Duration.minutes(1), statistic="p95", label=name)
                    for name, fn in functions.items()
                ],
            ),
        )
