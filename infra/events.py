"""Events: the custom bus, the tracker's rules with retries and a DLQ, MSK, the relay schedule."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from infra.config import DeployConfig
from shared.domain.contracts import TRACKED_EVENTS

MSK_TOPIC = "order-executions"
MSK_BATCH_SIZE = 100
#: EventBridge retries with back-off for up to MAX_EVENT_AGE before giving up to the DLQ.
RETRY_ATTEMPTS = 8
MAX_EVENT_AGE = cdk.Duration.hours(2)


class EventBus(Construct):
    """The service's event bus, the dead-letter queue, and the event-driven wiring.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"order-router-{config.stage}")
        self.dlq = sqs.Queue(
            self,
            "TrackerDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        nag.acknowledge(
            self.dlq,
            "SQS3",
            "This queue is itself the dead-letter queue of the tracker's rules, its "
            "asynchronous invocations and the MSK source; it needs no DLQ of its own.",
        )
        nag.skip_checkov(
            self.dlq,
            "CKV_AWS_27",
            "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which checkov does not "
            "recognise; EventBridge cannot deliver to a queue under the AWS-managed KMS key.",
        )
        self.rules: dict[str, events.Rule] = {}

    def route_to_tracker(self, tracker: lambda_.IFunction) -> None:
        """Deliver ``ExecutionReported`` and ``OrderRouted`` to the execution tracker.

        Parameters
        ----------
        tracker
            The ``track_execution`` function.
        """
        for source, detail_type in sorted(TRACKED_EVENTS):
            self.rules[detail_type] = events.Rule(
                self,
                f"{detail_type}Rule",
                event_bus=self.bus,
                description=f"{detail_type} from {source} to track_execution",
                event_pattern=events.EventPattern(
                    source=[str(source)], detail_type=[str(detail_type)]
                ),
                targets=[
                    targets.LambdaFunction(
                        tracker,
                        dead_letter_queue=self.dlq,
                        retry_attempts=RETRY_ATTEMPTS,
                        max_event_age=MAX_EVENT_AGE,
                    )
                ],
            )

    def add_msk_source(self, tracker: lambda_.Function, cluster_arn: str) -> None:
        """Consume ``order-executions`` from MSK (IAM auth) with partial batch responses.

        Parameters
        ----------
        tracker
            The ``track_execution`` function.
        cluster_arn
            ARN of the MSK cluster (``arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>``).
        """
        group_id = f"order-router-{self._config.stage}-track-execution"
        tracker.add_event_source(
            sources.ManagedKafkaEventSource(
                cluster_arn=cluster_arn,
                topic=MSK_TOPIC,
                batch_size=MSK_BATCH_SIZE,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                consumer_group_id=group_id,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dlq),
            )
        )
        nag.acknowledge(
            tracker,
            "IAM4",
            "CDK attaches AWSLambdaMSKExecutionRole so the event source mapping can describe the "
            "cluster and manage its ENIs; record access itself is granted below per resource.",
            finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaMSKExecutionRole",
        )
        # IAM access control on the cluster: connect, read the one topic, own one group.
        topic_arn = cluster_arn.replace(":cluster/", ":topic/", 1) + f"/{MSK_TOPIC}"
        group_arn = cluster_arn.replace(":cluster/", ":group/", 1) + f"/{group_id}"
        tracker.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "kafka-cluster:Connect",
                    "kafka-cluster:DescribeClusterDynamicConfiguration",
                ],
                resources=[cluster_arn],
            )
        )
        tracker.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                resources=[topic_arn],
            )
        )
        tracker.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                resources=[group_arn],
            )
        )

    def schedule_relay(self, relay: lambda_.IFunction) -> events.Rule:
        """Run the outbox relay every minute.

        Parameters
        ----------
        relay
            The ``outbox_relay`` function.

        Returns
        -------
        aws_cdk.aws_events.Rule
            The schedule rule.
        """
        return self._every_minute("OutboxRelaySchedule", relay, "Re-publish unsent outbox rows")

    def schedule_reconciler(self, reconcile: lambda_.IFunction) -> events.Rule:
        """Run the reconciler every minute.

        It finishes orders stuck past ``reconcile_after_s``, then polls the brokers for children
        without a terminal report past ``poll_after_s`` (docs/execution-tracking.md, section 8).

        Parameters
        ----------
        reconcile
            The ``reconcile`` function.

        Returns
        -------
        aws_cdk.aws_events.Rule
            The schedule rule.
        """
        return self._every_minute(
            "ReconcileSchedule",
            reconcile,
            "Finish stuck orders; poll brokers for children without a final report",
        )

    def schedule_rollup(self, rollup: lambda_.IFunction) -> events.Rule:
        """Run the analytics roll-up every 15 minutes (each run rolls only the closed hours).

        Parameters
        ----------
        rollup
            The ``rollup_analytics`` function.

        Returns
        -------
        aws_cdk.aws_events.Rule
            The schedule rule.
        """
        return events.Rule(
            self,
            "RollupAnalyticsSchedule",
            description="Roll closed hours up, create partitions ahead, apply retention",
            schedule=events.Schedule.rate(cdk.Duration.minutes(15)),
            targets=[
                targets.LambdaFunction(
                    rollup, retry_attempts=0, max_event_age=cdk.Duration.minutes(15)
                )
            ],
        )

    def _every_minute(
        self, construct_id: str, function: lambda_.IFunction, description: str
    ) -> events.Rule:
        # A missed run is harmless (the next one re-reads the table), so no retries pile up.
        return events.Rule(
            self,
            construct_id,
            description=description,
            schedule=events.Schedule.rate(cdk.Duration.minutes(1)),
            targets=[
                targets.LambdaFunction(
                    function, retry_attempts=0, max_event_age=cdk.Duration.minutes(1)
                )
            ],
        )
