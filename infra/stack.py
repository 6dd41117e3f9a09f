"""The one stack: it composes the constructs of :mod:`infra` and wires them together."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import layer, nag
from infra.apis import HttpApi, WebSocketApi
from infra.auth import TraderAuth
from infra.config import DeployConfig
from infra.dashboard import DIST_DIR, DashboardHosting
from infra.data import DATABASE_NAME, BrokerSecrets, Cache, ConnectionKey, Database
from infra.events import EventBus
from infra.functions import FunctionFactory
from infra.market import MarketDataSecret, MarketSchedules
from infra.migrations import Migrations
from infra.network import POSTGRES_PORT, Network
from infra.observability import Observability, alarm_name_prefix
from shared.domain.contracts import ApiPath

#: Settings field names and values, as :func:`shared.settings.lambda_environment` takes them.
SettingValues = dict[str, str | int | float | None]

#: Why a function called synchronously needs no dead-letter queue (checkov CKV_AWS_116).
SYNCHRONOUS = (
    "Invoked synchronously (API Gateway, or CloudFormation's provider for migrate): the caller "
    "gets the error, and a dead-letter queue only receives failed asynchronous invocations."
)


class OrderRouterStack(cdk.Stack):
    """The order router: network, data, identity, functions, APIs, events, observability.

    The stack holds no resource definitions of its own beyond outputs: each concern lives in
    its construct, and every function comes from :class:`infra.functions.FunctionFactory`.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options.
    layer_dir
        The built dependency layer.
    dashboard_dir
        The built web dashboard (``make web``), uploaded to its bucket.
    **kwargs
        Passed to :class:`aws_cdk.Stack` (``env``, ``description``…).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        layer_dir: Path = layer.LAYER_DIR,
        dashboard_dir: Path = DIST_DIR,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        network = Network(self, "Network", config=config)
        database = Database(self, "Database", network=network, config=config)
        cache = Cache(self, "Cache", network=network, config=config)
        brokers = BrokerSecrets(self, "Brokers", config=config)
        connection_key = ConnectionKey(self, "Connections", config=config)
        dashboard = DashboardHosting(self, "Dashboard", config=config)
        auth = TraderAuth(self, "Auth", config=config, dashboard_urls=[dashboard.url])
        bus = EventBus(self, "Events", config=config)

        # Stack-wide compliance decisions that hold for every resource of a kind.
        cdk.Aspects.of(self).add(nag.LogGroupsWithServiceKeys())
        factory = FunctionFactory(
            self,
            "Functions",
            config=config,
            vpc=network.vpc,
            subnets=network.app_subnets,
            layer_dir=layer_dir,
        )
        app_sgs: list[ec2.ISecurityGroup] = [network.functions_sg]
        postgres: SettingValues = {
            "db_secret_arn": database.app_secret.secret_arn,
            "db_host": database.proxy.endpoint,
            "db_port": POSTGRES_PORT,
            "db_name": DATABASE_NAME,
        }
        redis: SettingValues = {"redis_url": cache.redis_url}

        market_data = MarketDataSecret(self, "MarketDataSecret", config=config)
        market = {
            "market_data_source": "kite",
            "market_data_api_key": config.market_data_api_key,
            # The platform token has a secret of its own (docs/market-data.md).
            "market_data_secret_arn": market_data.secret.secret_arn,
        }
        # The WebSocket API needs ws_connect first; the pushers need the API's endpoint.
        ws_connect = factory.create(
            "ws_connect",
            description="WebSocket $connect/$disconnect/$default: JWT check, connection registry",
            security_groups=app_sgs,
            no_dlq_reason=SYNCHRONOUS,
            settings={
                **redis,
                # The status action reads brokers' routing status and the trader's open orders.
                **postgres,
                "jwt_issuer": auth.issuer,
                "jwt_audience": auth.audience,
                "jwks_url": auth.jwks_url,
            },
        )
        websocket = WebSocketApi(self, "WebSocket", config=config, ws_connect=ws_connect)
        push: SettingValues = {"ws_management_endpoint": websocket.management_endpoint}
        # Added after the API exists: constructing it needs ws_connect (no CloudFormation cycle,
        # the API resource itself does not depend on the function).
        factory.add_settings(ws_connect, **push)

        route_order = factory.create(
            "route_order",
            description="Trader HTTP routes: smart orders, analysis, analytics, profiles",
            security_groups=app_sgs,
            no_dlq_reason=SYNCHRONOUS,
            memory_size=1024,
            timeout=cdk.Duration.seconds(15),
            settings={
                **postgres,
                **redis,
                **push,
                **market,
                "event_bus_name": bus.bus.event_bus_name,
                "broker_secrets_arn": brokers.secret.secret_arn,
                "connection_kms_key_id": connection_key.key.key_arn,
                "jwt_issuer": auth.issuer,
                "jwt_audience": auth.audience,
            },
        )
        broker_connections = factory.create(
            "broker_connections",
            description="Trader broker connections: link (Kite, Upstox, Dhan), list, unlink",
            security_groups=app_sgs,
            no_dlq_reason=SYNCHRONOUS,
            settings={
                **postgres,
                "broker_secrets_arn": brokers.secret.secret_arn,
                "connection_kms_key_id": connection_key.key.key_arn,
            },
        )
        broker_webhook = factory.create(
            "broker_webhook",
            description="Broker postbacks: verify, normalise, de-duplicate, publish",
            security_groups=app_sgs,
            no_dlq_reason=SYNCHRONOUS,
            settings={
                **postgres,
                **redis,
                "event_bus_name": bus.bus.event_bus_name,
                "broker_secrets_arn": brokers.secret.secret_arn,
            },
        )
        track_execution = factory.create(
            "track_execution",
            description="Execution reports: metrics, profile update, WebSocket push",
            security_groups=app_sgs,
            timeout=cdk.Duration.seconds(60),
            dead_letter_queue=bus.dlq,
            settings={**postgres, **redis, **push},
        )
        outbox_relay = factory.create(
            "outbox_relay",
            description="Re-publishes outbox rows that were not published at commit",
            security_groups=app_sgs,
            no_dlq_reason="Started every minute by a schedule without retries: a failed run "
            "leaves its rows in the outbox and the next run publishes them.",
            timeout=cdk.Duration.seconds(50),
            settings={**postgres, "event_bus_name": bus.bus.event_bus_name},
        )
        reconcile = factory.create(
            "reconcile",
            description="Finishes orders whose placement never happened (a crash mid-order) and "
            "polls brokers for children without a final report",
            security_groups=app_sgs,
            no_dlq_reason="Started every minute by a schedule without retries: a failed run "
            "leaves its stuck orders for the next run, which takes them with SKIP LOCKED.",
            timeout=cdk.Duration.seconds(50),
            settings={
                **postgres,
                "event_bus_name": bus.bus.event_bus_name,
                # Brokers are asked whether they hold each stuck child (their credentials).
                "broker_secrets_arn": brokers.secret.secret_arn,
                "connection_kms_key_id": connection_key.key.key_arn,
            },
        )
        market_refresh = factory.create(
            "market_refresh",
            description="Scheduled market data: daily instrument master, per-minute statistics",
            security_groups=app_sgs,
            no_dlq_reason="Started by EventBridge Scheduler, whose next run repeats the job "
            "(the loads are idempotent); a failed run is logged and counted.",
            timeout=cdk.Duration.minutes(5),
            settings={**postgres, **redis, **market},
        )
        admin = factory.create(
            "admin",
            description="Admin HTTP routes: brokers and their routing status, profiles, audit",
            security_groups=app_sgs,
            no_dlq_reason=SYNCHRONOUS,
            # A market refresh on demand runs the market_refresh jobs (docs/market-data.md).
            timeout=cdk.Duration.seconds(29),
            settings={
                **postgres,
                **redis,
                **push,
                **market,
                # GET /admin/alarms reads this stack's alarms (infra/observability.py).
                "alarm_source": "cloudwatch",
                "alarm_name_prefix": alarm_name_prefix(config.stage),
            },
        )
        _grant_describe_alarms(admin, alarm_name_prefix(config.stage))
        rollup_analytics = factory.create(
            "rollup_analytics",
            description="Hourly analytics roll-ups, execution_metrics partitions and retention",
            security_groups=app_sgs,
            no_dlq_reason="Started every 15 minutes by a schedule without retries: a failed "
            "run leaves the watermark where it was and the next run rolls the same hours.",
            timeout=cdk.Duration.minutes(5),
            settings={**postgres},
        )
        migrate = factory.create(
            "migrate",
            description="Deploy-time custom resource: applies shared/migrations with yoyo",
            security_groups=[network.migrations_sg],
            no_dlq_reason=SYNCHRONOUS,
            timeout=cdk.Duration.minutes(5),
            settings={
                **postgres,
                # Migrations run as the schema owner, on the writer rather than the proxy (long
                # DDL transactions), and grant the services' role.
                "db_secret_arn": database.admin_secret.secret_arn,
                "db_app_secret_arn": database.app_secret.secret_arn,
                "db_host": database.cluster.cluster_endpoint.hostname,
            },
        )

        _grant_least_privilege(
            database=database,
            bus=bus,
            brokers=brokers,
            market_data=market_data,
            connection_key=connection_key,
            websocket=websocket,
            fns={
                "route_order": route_order,
                "broker_connections": broker_connections,
                "broker_webhook": broker_webhook,
                "track_execution": track_execution,
                "outbox_relay": outbox_relay,
                "reconcile": reconcile,
                "migrate": migrate,
                "rollup_analytics": rollup_analytics,
                "admin": admin,
                "market_refresh": market_refresh,
                "ws_connect": ws_connect,
            },
        )

        bus.route_to_tracker(track_execution)
        bus.schedule_relay(outbox_relay)
        bus.schedule_reconciler(reconcile)
        MarketSchedules(self, "MarketData", function=market_refresh)
        bus.schedule_rollup(rollup_analytics)
        if config.msk_cluster_arn is not None:
            bus.add_msk_source(track_execution, config.msk_cluster_arn)

        migrations = Migrations(
            self,
            "Migrations",
            migrate=migrate,
            after=[database.cluster],
            app_secret_arn=database.app_secret.secret_arn,
        )
        # Rotating the app secret clones router_app: the role must exist first.
        database.app_rotation_schedule.node.add_dependency(migrations.resource)

        http = HttpApi(
            self,
            "Http",
            config=config,
            auth=auth,
            route_order=route_order,
            broker_webhook=broker_webhook,
            admin=admin,
            broker_connections=broker_connections,
            dashboard_urls=[dashboard.url],
        )
        dashboard.deploy(
            {
                "auth": "cognito",
                "apiBase": f"{http.url}api/v1",
                "wsUrl": websocket.url,
                "cognito": {"domain": auth.hosted_ui_url, "clientId": auth.audience},
            },
            dist_dir=dashboard_dir,
        )
        Observability(
            self,
            "Observability",
            config=config,
            http_api=http.api,
            dlq=bus.dlq,
            functions=factory.functions,
        )

        outputs = {
            "HttpApiUrl": (http.url, "Base URL of the HTTP API"),
            "WebhookUrlTemplate": (
                f"{http.url}{ApiPath.SIGNED_WEBHOOK.removeprefix('/')}",
                "Give each broker this URL with its id (and /{token} if unsigned)",
            ),
            "WebSocketUrl": (websocket.url, "wss URL for the dashboard (?token=<JWT>)"),
            "WebSocketManagementEndpoint": (websocket.management_endpoint, "@connections API"),
            "UserPoolId": (auth.user_pool.user_pool_id, "Cognito user pool of the traders"),
            "UserPoolClientId": (auth.audience, "Dashboard app client id (JWT audience)"),
            "DashboardUrl": (dashboard.url, "The web dashboard (CloudFront)"),
            "HostedUiUrl": (auth.hosted_ui_url, "Cognito hosted UI the dashboard signs in with"),
            "EventBusName": (bus.bus.event_bus_name, "Custom EventBridge bus"),
            "BrokerSecretArn": (brokers.secret.secret_arn, "Broker credentials (JSON by id)"),
            "MarketDataSecretArn": (
                market_data.secret.secret_arn,
                "Platform Kite token for market data (JSON: market-data/kite)",
            ),
            "ConnectionKeyArn": (connection_key.key.key_arn, "KMS key of traders' broker tokens"),
            "DatabaseProxyEndpoint": (database.proxy.endpoint, "RDS Proxy for the functions"),
            "DatabaseClusterArn": (database.cluster.cluster_arn, "For aws rds-data (Data API)"),
            "DatabaseSecretArn": (database.admin_secret.secret_arn, "Admin secret (rotated)"),
            "DatabaseAppSecretArn": (
                database.app_secret.secret_arn,
                "The services' router_app secret (rotated)",
            ),
            "TrackerDlqUrl": (bus.dlq.queue_url, "Dead-letter queue of the tracker"),
        }
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)


def _grant_describe_alarms(admin: lambda_.Function, prefix: str) -> None:
    """Let the admin function describe this stack's alarms, by name prefix, and nothing else.

    DescribeAlarms accepts alarm ARNs (only composite alarms need ``*``, and none is listed).
    """
    stack = cdk.Stack.of(admin)
    nag.acknowledge(
        admin,
        "IAM5",
        "The admin function lists this stack's alarms by name prefix (DescribeAlarms on "
        "alarm:<prefix>*): read-only, and no other alarm of the account.",
        finding=f"Resource::arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:"
        f"alarm:{prefix}*",
    )
    admin.add_to_role_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:DescribeAlarms"],
            resources=[
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"{prefix}*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
    )


def _grant_least_privilege(
    *,
    database: Database,
    bus: EventBus,
    brokers: BrokerSecrets,
    market_data: MarketDataSecret,
    connection_key: ConnectionKey,
    websocket: WebSocketApi,
    fns: dict[str, lambda_.Function],
) -> None:
    """Give each function exactly the grants its use cases need, and nothing else."""
    # ws_connect reads Postgres for its status action (brokers' status, open orders).
    for name in sorted(fns):
        database.app_secret.grant_read(fns[name])
    database.admin_secret.grant_read(fns["migrate"])
    for name in ("route_order", "broker_webhook", "outbox_relay", "reconcile"):
        bus.bus.grant_put_events_to(fns[name])
    for name in ("route_order", "broker_connections", "broker_webhook", "reconcile"):
        brokers.secret.grant_read(fns[name])
    for name in ("route_order", "market_refresh", "admin"):
        market_data.secret.grant_read(fns[name])
    # Only the link flows seal tokens; placing and reconciling orders only open them.
    connection_key.grant_seal(fns["broker_connections"])
    for name in ("route_order", "reconcile"):
        connection_key.grant_open(fns[name])
    for name in ("route_order", "track_execution", "ws_connect", "admin"):
        websocket.grant_push(fns[name])
