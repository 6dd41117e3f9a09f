"""Data: Aurora PostgreSQL Serverless v2 behind an RDS Proxy, ElastiCache Serverless, secrets."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from infra import capacity, nag
from infra.config import DeployConfig
from infra.network import POSTGRES_PORT, REDIS_PORT, Network
from shared.settings import APP_DB_ROLE, Settings

#: A current Aurora PostgreSQL release (cfn-lint rejects deprecated ones such as 16.4).
AURORA_VERSION = rds.AuroraPostgresEngineVersion.VER_17_7
DATABASE_NAME = "order_router"
PROXY_INIT_QUERY = (
    f"SET statement_timeout = {Settings.model_fields['db_statement_timeout_ms'].default}"
)
"""Run by the proxy on each database connection it opens: the functions' statement timeout."""
ENHANCED_MONITORING_POLICY = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
)
#: Why the secrets use Secrets Manager's AWS-managed key (checkov CKV_AWS_149).
MANAGED_KEY_REASON = (
    "Encrypted with the AWS-managed Secrets Manager key: the secrets are never shared across "
    "accounts, each function's IAM grant already names the secrets it reads, and a customer "
    "key would have to be granted to the proxy and both rotation functions as well."
)


class Database(Construct):
    """Aurora PostgreSQL Serverless v2, its admin secret with rotation, and an RDS Proxy.

    Functions connect to the proxy (TLS required) so that bursts of Lambda containers share a
    small pool of database connections; migrations and rotation reach the writer directly.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    network
        VPC, subnets and security groups.
    config
        Deployment options: prod turns on deletion protection, snapshots and a reader.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, network: Network, config: DeployConfig
    ) -> None:
        super().__init__(scope, construct_id)
        cluster_id = f"order-router-{config.stage}"
        sizes = capacity.for_stage(config.stage)
        # Own the exported log group (retention, removal) instead of CDK's LogRetention Lambda.
        postgres_logs = cdk.aws_logs.LogGroup(
            self,
            "PostgresLogs",
            log_group_name=f"/aws/rds/cluster/{cluster_id}/postgresql",
            retention=cdk.aws_logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        insights = config.is_prod
        writer = rds.ClusterInstance.serverless_v2("Writer", enable_performance_insights=insights)
        # A prod reader in the other AZ is the failover target; dev runs one instance.
        readers = (
            [
                rds.ClusterInstance.serverless_v2(
                    "Reader", scale_with_writer=True, enable_performance_insights=insights
                )
            ]
            if config.is_prod
            else []
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=AURORA_VERSION),
            credentials=rds.Credentials.from_generated_secret(
                "router_admin", secret_name=f"order-router/{config.stage}/db-admin"
            ),
            default_database_name=DATABASE_NAME,
            writer=writer,
            readers=readers,
            # Dev may pause to zero ACUs when idle; prod keeps a warm floor for routing latency.
            serverless_v2_min_capacity=sizes.aurora_min_acu,
            serverless_v2_max_capacity=sizes.aurora_max_acu,
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[network.database_sg],
            storage_encrypted=True,
            iam_authentication=True,
            deletion_protection=config.is_prod,
            removal_policy=(
                cdk.RemovalPolicy.SNAPSHOT if config.is_prod else cdk.RemovalPolicy.DESTROY
            ),
            backup=rds.BackupProps(retention=cdk.Duration.days(14 if config.is_prod else 1)),
            cluster_identifier=cluster_id,
            cloudwatch_logs_exports=["postgresql"],
            port=POSTGRES_PORT,
            # Operators register brokers with `aws rds-data` instead of a bastion host.
            enable_data_api=True,
            # OS metrics (memory, swap, load) every minute in prod: the database is what a
            # burst of Lambda containers presses on first.
            monitoring_interval=cdk.Duration.seconds(60) if config.is_prod else None,
        )
        self.cluster.node.add_dependency(postgres_logs)
        secret = self.cluster.secret
        if secret is None:  # pragma: no cover - from_generated_secret always creates one
            raise RuntimeError("the cluster has no generated secret")
        self.admin_secret: sm.ISecret = secret

        # Single-user rotation every 30 days; the proxy re-reads the secret on its own, clients
        # re-fetch it when a login fails.
        self.rotation = self.cluster.add_rotation_single_user(
            automatically_after=cdk.Duration.days(30),
            security_group=network.rotation_sg,
            vpc_subnets=network.app_subnets,
        )

        # The services log in as router_app (rows only; the migrate function creates and grants
        # the role); the admin secret is read by migrate alone. Multi-user rotation alternates
        # router_app and a clone that is a member of it, so a rotation never locks clients out.
        self.app_secret: sm.ISecret = rds.DatabaseSecret(
            self,
            "AppSecret",
            username=APP_DB_ROLE,
            secret_name=f"order-router/{config.stage}/db-app",
            master_secret=self.admin_secret,
        ).attach(self.cluster)
        # Beside the cluster rather than under it (cluster.add_rotation_multi_user): the stack
        # makes this rotation wait for the migrations, which wait for the cluster.
        sm.SecretRotation(
            self,
            "AppRotation",
            application=sm.SecretRotationApplication.POSTGRES_ROTATION_MULTI_USER,
            secret=self.app_secret,
            master_secret=self.admin_secret,
            target=self.cluster,
            vpc=network.vpc,
            vpc_subnets=network.app_subnets,
            security_group=network.rotation_sg,
            automatically_after=cdk.Duration.days(30),
        )
        # SecretRotation puts its schedule under the secret (the attachment).
        self.app_rotation_schedule = self.app_secret.node.find_child("RotationSchedule")

        self.proxy = self.cluster.add_proxy(
            "Proxy",
            secrets=[self.admin_secret, self.app_secret],
            vpc=network.vpc,
            vpc_subnets=network.app_subnets,
            security_groups=[network.proxy_sg],
            require_tls=True,
            debug_logging=False,
            idle_client_timeout=cdk.Duration.minutes(15),
            # Session settings come from the proxy, not the clients: a client's SET would pin
            # it to one database connection (shared/adapters/postgres/pool.py, docs/capacity.md).
            init_query=PROXY_INIT_QUERY,
            # The rest of max_connections is for migrate, rotation, the Data API and operators.
            max_connections_percent=sizes.proxy_max_connections_percent,
        )

        nag.acknowledge(
            self.cluster,
            "RDS11",
            "The port is reachable only from the proxy, migration and rotation security groups; "
            "a non-default port adds no protection and breaks tooling defaults.",
        )
        if config.is_prod:
            nag.acknowledge(
                self.cluster,
                "IAM4",
                "AmazonRDSEnhancedMonitoringRole only lets RDS publish the instances' OS metrics.",
                finding=ENHANCED_MONITORING_POLICY,
            )
        else:
            nag.acknowledge(
                self.cluster,
                "RDS10",
                "Dev stacks are disposable; prod enables deletion protection.",
            )
        for node in self.node.find_all():
            if isinstance(node, rds.CfnDBInstance) and not config.is_prod:
                nag.skip_checkov(
                    node,
                    "CKV_AWS_118",
                    "Dev stacks are disposable and pause at 0 ACU; prod enables enhanced "
                    "monitoring (60 s) on every instance.",
                )
            if isinstance(node, sm.CfnSecret):
                nag.skip_checkov(node, "CKV_AWS_149", MANAGED_KEY_REASON)


class Cache(Construct):
    """ElastiCache Serverless (Valkey 8) reached over TLS on 6379 from the functions only.

    Serverless caches always encrypt in transit and at rest; access is controlled by the
    security group (functions only). ``redis_url`` uses the ``rediss://`` scheme accordingly.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    network
        VPC, subnets and security groups.
    config
        Deployment options.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, network: Network, config: DeployConfig
    ) -> None:
        super().__init__(scope, construct_id)
        subnets = network.vpc.select_subnets(subnet_group_name="data")
        self.cache = elasticache.CfnServerlessCache(
            self,
            "Serverless",
            engine="valkey",
            major_engine_version="8",
            serverless_cache_name=f"order-router-{config.stage}",
            description="Order router profile cache, WebSocket registry, rate limits",
            security_group_ids=[network.cache_sg.security_group_id],
            subnet_ids=subnets.subnet_ids,
            snapshot_retention_limit=1 if config.is_prod else 0,
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(
                    maximum=5 if config.is_prod else 1, unit="GB"
                ),
            ),
        )
        # Serverless caches listen on 6379 (and 6380 for reads); TLS is mandatory.
        self.redis_url = f"rediss://{self.cache.attr_endpoint_address}:{REDIS_PORT}/0"


class BrokerSecrets(Construct):
    """The Secrets Manager secret holding every broker's API and webhook credentials.

    The value is a JSON object keyed by broker id; operators fill it in after deployment
    (``docs/deploy.md``). Its initial value is an empty object, never a credential.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.secret = sm.Secret(
            self,
            "Secret",
            secret_name=f"order-router/{config.stage}/brokers",
            description="Broker API keys, API secrets and webhook secrets, keyed by broker id",
            secret_string_value=cdk.SecretValue.unsafe_plain_text("{}"),
            removal_policy=(
                cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
            ),
        )
        nag.skip_checkov(self.secret, "CKV_AWS_149", MANAGED_KEY_REASON)
        nag.acknowledge(
            self.secret,
            "SMG4",
            "Broker credentials are issued by the brokers; they are rotated in each broker's "
            "console and written here by an operator, so no rotation Lambda can do it.",
        )


class ConnectionKey(Construct):
    """The KMS key that wraps the data keys of traders' broker tokens (envelope encryption).

    Tokens live in Postgres only as AES-256-GCM ciphertext under a data key this key wraps,
    bound to the trader and broker by the encryption context (docs/brokers.md). Rotated
    yearly by KMS; kept when a production stack is deleted.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"order-router {config.stage}: wraps traders' broker token data keys",
            enable_key_rotation=True,
            removal_policy=(
                cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
            ),
        )

    def grant_seal(self, grantee: iam.IGrantable) -> None:
        """Seal and open tokens (the link flows): ``GenerateDataKey`` and ``Decrypt``."""
        self.key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")

    def grant_open(self, grantee: iam.IGrantable) -> None:
        """Open tokens only (placing and looking up orders): ``Decrypt``."""
        self.key.grant(grantee, "kms:Decrypt")
