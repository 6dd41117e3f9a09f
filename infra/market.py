"""The market-data schedules (EventBridge Scheduler; docs/market-data.md).

Two schedules invoke ``market_refresh`` in IST (``Asia/Kolkata``), on weekdays:

* ``instruments`` at 08:40 and 08:55, before the 09:00 pre-open: the day's instrument master and
  circuit limits (the load is idempotent, so the second run only catches a late dump);
* ``statistics`` every minute from 09:00 to 15:59: the routed symbols' spread, depth, volume and
  last price.

Exchange holidays are not known to the scheduler; on those days the statistics job finds every
quote stale and changes nothing (and says so), and risk refuses orders by the market calendar.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from infra import nag
from infra.config import DeployConfig
from infra.data import MANAGED_KEY_REASON

IST = cdk.TimeZone.ASIA_KOLKATA


class MarketDataSecret(Construct):
    """The platform's market-data session token, apart from every broker credential.

    A JSON object ``{"market-data/kite": "<access token>"}`` written by an operator after the
    day's Kite login (docs/deploy.md); its own secret so that the functions reading quotes
    (routing, the admin trigger) never get the brokers' order credentials.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.secret = sm.Secret(
            self,
            "Secret",
            secret_name=f"order-router/{config.stage}/market-data",
            description="The platform Kite session's access token for market data",
            secret_string_value=cdk.SecretValue.unsafe_plain_text("{}"),
            removal_policy=(
                cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
            ),
        )
        nag.skip_checkov(self.secret, "CKV_AWS_149", MANAGED_KEY_REASON)
        nag.acknowledge(
            self.secret,
            "SMG4",
            "Kite issues the session token at the day's login and it expires every morning; an "
            "operator writes it here, so no rotation Lambda can do it.",
        )


class MarketSchedules(Construct):
    """The daily instrument load and the per-minute statistics refresh.

    Parameters
    ----------
    function
        The ``market_refresh`` function.
    """

    def __init__(self, scope: Construct, construct_id: str, *, function: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        # One role for both schedules, for this function only and for this account's schedules.
        role = iam.Role(
            self,
            "InvokeRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            ),
            description="EventBridge Scheduler invokes market_refresh",
        )
        self.instruments = scheduler.Schedule(
            self,
            "InstrumentsDaily",
            description="Load the day's instrument master and price bands before the open",
            schedule=scheduler.ScheduleExpression.cron(
                time_zone=IST, minute="40,55", hour="8", week_day="MON-FRI"
            ),
            target=targets.LambdaInvoke(
                function,
                input=scheduler.ScheduleTargetInput.from_object({"job": "instruments"}),
                role=role,
                # A failed load is retried by the 08:55 run; retries would only pile up.
                retry_attempts=2,
                max_event_age=cdk.Duration.minutes(10),
            ),
        )
        self.statistics = scheduler.Schedule(
            self,
            "StatisticsEveryMinute",
            description="Refresh the routed symbols' market statistics during the session",
            schedule=scheduler.ScheduleExpression.cron(
                time_zone=IST, minute="*", hour="9-15", week_day="MON-FRI"
            ),
            target=targets.LambdaInvoke(
                function,
                input=scheduler.ScheduleTargetInput.from_object({"job": "statistics"}),
                role=role,
                # The next minute's run replaces a missed one.
                retry_attempts=0,
                max_event_age=cdk.Duration.minutes(1),
            ),
        )
        # LambdaInvoke grants the role the function and "<arn>:*" (its versions and aliases).
        nag.acknowledge(
            role,
            "IAM5",
            "Scheduler may invoke market_refresh and its versions/aliases (what LambdaInvoke "
            "grants); nothing else.",
            finding=f"Resource::{nag.logical_ref(cdk.Stack.of(self), function.function_arn)}:*",
        )
