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
from shared.observability import QUARANTINED_REPORTS_METRIC

ROUTING_LATENCY_P95_MS = 50
ORDER_LATENCY_P90_MS = 200
"""The specification's execution SLO: a smart order routed and placed, p90 (``OrderLatency``)."""
HTTP_5XX_RATE_PERCENT = 1
WS_PUSH_FAILURES_PER_5_MIN = 10
_DIMENSIONS = {"service": target.SERVICE_NAME}


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

        requests = http_api.metric_count(period=cdk.Duration.minutes(1), statistic="Sum")
        errors = http_api.metric_server_error(period=cdk.Duration.minutes(1), statistic="Sum")
        five_xx_rate = cw.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"requests": requests, "errors": errors},
            label="5xx %",
            period=cdk.Duration.minutes(1),
        )
        dlq_depth = dlq.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.minutes(1), statistic="Maximum"
        )
        tracker_errors = functions["track_execution"].metric_errors(
            period=cdk.Duration.minutes(5), statistic="Sum"
        )
        latency_p95 = service_metric("RoutingLatency", "p95")
        order_latency_p90 = service_metric("OrderLatency", "p90")
        route_throttles = functions["route_order"].metric_throttles(
            period=cdk.Duration.minutes(1), statistic="Sum"
        )
        push_failures = service_metric("WebSocketPushFailures", period_s=300)
        late_fills = service_metric("LateFillsAfterTimeout", period_s=300)
        quarantined = service_metric(QUARANTINED_REPORTS_METRIC, period_s=300)

        # (metric, threshold, description, datapoints of 5 that must breach; None = 1 of 1)
        specs: dict[str, tuple[cw.IMetric, float, str, int | None]] = {
            "RoutingLatencyP95": (
                latency_p95,
                ROUTING_LATENCY_P95_MS,
                f"Routing p95 above {ROUTING_LATENCY_P95_MS} ms (3 of 5 min)",
                3,
            ),
            "OrderLatencyP90": (
                order_latency_p90,
                ORDER_LATENCY_P90_MS,
                f"Execution (smart order) p90 above {ORDER_LATENCY_P90_MS} ms (3 of 5 min)",
                3,
            ),
            # Orders beyond route_order's reserved concurrency are refused by Lambda: the API
            # throttle should have stopped them first (infra/capacity.py, docs/capacity.md).
            "RouteOrderThrottles": (
                route_throttles,
                0,
                "route_order reached its reserved concurrency and refused invocations",
                None,
            ),
            "Http5xxRate": (
                five_xx_rate,
                HTTP_5XX_RATE_PERCENT,
                f"HTTP API 5xx above {HTTP_5XX_RATE_PERCENT}% (3 of 5 min)",
                3,
            ),
            "DlqDepth": (dlq_depth, 0, "Events or records the tracker could not process", None),
            "TrackExecutionErrors": (tracker_errors, 0, "track_execution invocations failed", None),
            # A broker filled a child after we timed it out and sent its quantity elsewhere:
            # the order may hold more than the trader asked for (orders.status OVERFILLED).
            "LateFillsAfterTimeout": (
                late_fills,
                0,
                "A broker filled after its timeout; check OVERFILLED orders",
                None,
            ),
            # A broker sent a report that cannot be true of its child (docs/execution-tracking.md):
            # it was held, not applied; list it with `order-router quarantine`.
            "QuarantinedReports": (
                quarantined,
                0,
                "An execution report was quarantined; list the held reports and their reasons",
                None,
            ),
            # A few failures are normal (a client vanished between lookup and push).
            "WebSocketPushFailures": (
                push_failures,
                WS_PUSH_FAILURES_PER_5_MIN,
                f"More than {WS_PUSH_FAILURES_PER_5_MIN} WebSocket pushes failed in 5 min",
                None,
            ),
        }
        self.alarms = {
            name: cw.Alarm(
                self,
                name,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=5 if datapoints else 1,
                datapoints_to_alarm=datapoints,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            for name, (metric, threshold, description, datapoints) in specs.items()
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
