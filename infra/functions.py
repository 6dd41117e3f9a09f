"""The one Lambda factory: runtime, architecture, layer, code asset, logs, tracing, env."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import capacity, layer, nag, target
from infra.config import DeployConfig
from shared.settings import lambda_environment

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64

if RUNTIME.name != f"python{target.PYTHON_VERSION}":  # pragma: no cover - guards edits
    raise RuntimeError("infra.functions.RUNTIME and infra.target.PYTHON_VERSION disagree")


def code_excludes(function: str) -> list[str]:
    """Gitignore-style patterns that leave only ``functions/<function>/`` and ``shared/``.

    Parameters
    ----------
    function
        Folder name under ``functions/``.

    Returns
    -------
    list[str]
        Exclude patterns for :class:`aws_cdk.aws_lambda.Code.from_asset` in ``GIT`` mode.
    """
    return [
        # Whitelist: drop every top-level entry, then re-admit the two we ship.
        "/*",
        "!/shared/",
        "!/functions/",
        "/functions/*",
        "!/functions/__init__.py",
        f"!/functions/{function}/",
        # Never ship caches or tests, wherever they are.
        "__pycache__/",
        "*.pyc",
        "tests/",
        "test_*.py",
        "conftest.py",
    ]


class FunctionFactory(Construct):
    """Builds every function of the service the same way.

    All functions share the runtime, the arm64 architecture, the dependency layer, JSON logs
    with a retained log group, active tracing, the functions security group and the
    application subnets (NAT egress). Each gets its own role (CDK creates one per function) and
    an environment built by :func:`shared.settings.lambda_environment`.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    config
        Deployment options.
    vpc
        The VPC the functions run in.
    subnets
        Subnets with NAT egress.
    layer_dir
        A built dependency layer (see :mod:`infra.layer`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        layer_dir: Path = layer.LAYER_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
        if not (layer_dir / "python").is_dir():
            raise FileNotFoundError(
                f"{layer_dir} is not built: run `python -m infra.layer` (needs PyPI once)"
            )
        self._config = config
        self._capacity = capacity.for_stage(config.stage)
        self._vpc = vpc
        self._subnets = subnets
        # The stamp is a hash of everything the layer holds, so CDK need not hash 80 MB.
        stamp = (layer_dir / layer.STAMP_NAME).read_text().strip()
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(layer_dir),
                asset_hash_type=cdk.AssetHashType.CUSTOM,
                asset_hash=stamp,
                exclude=[layer.STAMP_NAME],
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=f"order-router runtime dependencies ({target.CPYTHON_ABI}, "
            f"{target.LINUX_ARCH})",
        )
        self.log_retention = (
            logs.RetentionDays.THREE_MONTHS if config.is_prod else logs.RetentionDays.TWO_WEEKS
        )
        self.functions: dict[str, lambda_.Function] = {}

    def create(
        self,
        name: str,
        *,
        settings: Mapping[str, str | int | float | None],
        security_groups: list[ec2.ISecurityGroup],
        description: str,
        timeout: cdk.Duration | None = None,
        memory_size: int = 512,
        dead_letter_queue: sqs.IQueue | None = None,
        no_dlq_reason: str | None = None,
        retry_attempts: int | None = None,
    ) -> lambda_.Function:
        """Create the function whose handler is ``functions/<name>/handler.lambda_handler``.

        Parameters
        ----------
        name
            Folder name under ``functions/``.
        settings
            :class:`shared.settings.Settings` field names and values for the environment.
        security_groups
            Security groups of the function.
        description
            What the function does.
        timeout
            Timeout (default 10 s).
        memory_size
            Memory in MB (CPU scales with it).
        dead_letter_queue
            Queue for asynchronous invocations that failed every retry.
        no_dlq_reason
            Why the function needs no dead-letter queue (it is invoked synchronously, say);
            required without ``dead_letter_queue``, and recorded for checkov.
        retry_attempts
            Retries of asynchronous invocations (Lambda's default is 2).

        Returns
        -------
        aws_cdk.aws_lambda.Function
            The function.

        Raises
        ------
        ValueError
            When neither ``dead_letter_queue`` nor ``no_dlq_reason`` is given.
        KeyError
            When ``name`` has no row in :mod:`infra.capacity`.
        """
        if dead_letter_queue is None and not no_dlq_reason:
            raise ValueError(f"{name}: give a dead_letter_queue or the no_dlq_reason")
        limits = self._capacity.function(name)
        scope = Construct(self, _pascal(name))
        log_group = logs.LogGroup(
            scope,
            "Logs",
            retention=self.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        environment = {
            **lambda_environment(
                stage=self._config.stage, db_pool_max=limits.db_pool_max, **settings
            ),
            # Read by Powertools itself (not by Settings): service dimension and namespace.
            "POWERTOOLS_SERVICE_NAME": target.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": target.METRICS_NAMESPACE,
        }
        function = lambda_.Function(
            scope,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"functions.{name}.handler.lambda_handler",
            code=lambda_.Code.from_asset(
                str(ROOT), exclude=code_excludes(name), ignore_mode=cdk.IgnoreMode.GIT
            ),
            layers=[self.layer],
            description=description,
            timeout=timeout or cdk.Duration.seconds(10),
            memory_size=memory_size,
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            vpc=self._vpc,
            vpc_subnets=self._subnets,
            security_groups=security_groups,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=retry_attempts,
            # Sized from the RDS Proxy's connection budget (infra/capacity.py): a burst cannot
            # exhaust the database or take the rest of the account's concurrency.
            reserved_concurrent_executions=limits.reserved_concurrency,
        )
        nag.acknowledge(
            function,
            "IAM4",
            "AWSLambdaBasicExecutionRole only lets the function write its own logs.",
            finding=nag.LAMBDA_BASIC_POLICY,
        )
        nag.acknowledge(
            function,
            "IAM4",
            "AWSLambdaVPCAccessExecutionRole only manages the function's ENIs in the VPC.",
            finding=nag.LAMBDA_VPC_POLICY,
        )
        nag.acknowledge(
            function,
            "IAM5",
            "X-Ray trace segments and ENI operations have no resource-level permissions.",
            finding="Resource::*",
        )
        nag.skip_checkov(
            function,
            "CKV_AWS_173",
            "The environment holds names, ARNs and endpoints only (settings are validated at "
            "synthesis); credentials are read from Secrets Manager at cold start, and Lambda "
            "encrypts the environment at rest with its service key.",
        )
        if no_dlq_reason:
            nag.skip_checkov(function, "CKV_AWS_116", no_dlq_reason)
        self.functions[name] = function
        return function

    @staticmethod
    def add_settings(function: lambda_.Function, **settings: str | int | float | None) -> None:
        """Add settings to a function's environment after it was created.

        Parameters
        ----------
        function
            A function made by :meth:`create`.
        **settings
            :class:`shared.settings.Settings` field names and values.
        """
        for key, value in lambda_environment(**settings).items():
            function.add_environment(key, value)


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
