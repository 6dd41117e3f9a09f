"""Functions: one factory, one runtime and architecture, layer, tracing, logs, least privilege."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from infra import layer, target
from infra.config import DeployConfig
from infra.functions import ARCHITECTURE, RUNTIME, FunctionFactory, code_excludes
from shared.settings import ENV_PREFIX, Settings
from tests.infra.support import (
    ROOT,
    actions_of,
    function_by_handler,
    one,
    policy_statements,
    resources,
)

FUNCTIONS = (
    "route_order",
    "broker_connections",
    "broker_webhook",
    "track_execution",
    "ws_connect",
    "outbox_relay",
    "reconcile",
    "migrate",
    "admin",
    "market_refresh",
    "rollup_analytics",
)
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}


def test_runtime_matches_the_layer_target() -> None:
    # GIVEN the CDK runtime WHEN compared with the layer's target THEN they agree
    assert RUNTIME.name == f"python{target.PYTHON_VERSION}"
    assert ARCHITECTURE.name == "arm64"
    assert target.LINUX_ARCH == "aarch64"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_shape(dev: Template, name: str) -> None:
    # GIVEN each function WHEN synthesized THEN same runtime, arm64, layer, tracing, JSON logs
    # (the other layer is aws-cdk-lib's AWS CLI layer of the dashboard upload, infra/dashboard.py)
    (layer_id,) = [
        key for key in resources(dev, "AWS::Lambda::LayerVersion") if "AwsCliLayer" not in key
    ]
    _, fn = function_by_handler(dev, name)
    props = fn["Properties"]
    assert props["Runtime"] == RUNTIME.name
    assert props["Architectures"] == ["arm64"]
    assert props["Layers"] == [{"Ref": layer_id}]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert "VpcConfig" in props


@pytest.mark.parametrize("name", FUNCTIONS)
def test_environment_comes_from_settings(dev: Template, name: str) -> None:
    # GIVEN a function's environment WHEN synthesized THEN every ROUTER_ name is a Settings field
    _, fn = function_by_handler(dev, name)
    variables = fn["Properties"]["Environment"]["Variables"]
    fields = {k.removeprefix(ENV_PREFIX).lower() for k in variables if k not in POWERTOOLS}
    assert fields <= set(Settings.model_fields)
    assert variables["ROUTER_STAGE"] == "dev"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == target.METRICS_NAMESPACE


def test_log_groups_have_retention(dev: Template, prod: Template) -> None:
    # GIVEN the function log groups WHEN synthesized THEN retention is 14 days dev, 90 prod
    for template, days in ((dev, 14), (prod, 90)):
        for name in FUNCTIONS:
            _, fn = function_by_handler(template, name)
            group_id = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            group = template.find_resources("AWS::Logs::LogGroup")[group_id]
            assert group["Properties"]["RetentionInDays"] == days


def test_least_privilege_grants(dev: Template) -> None:
    # GIVEN the roles WHEN synthesized THEN each function has exactly its use cases' actions
    def actions(name: str) -> set[str]:
        return actions_of(policy_statements(dev, function_by_handler(dev, name)[0]))

    assert {"events:PutEvents", "execute-api:ManageConnections"} <= actions("route_order")
    assert "events:PutEvents" in actions("broker_webhook")
    assert "execute-api:ManageConnections" not in actions("broker_webhook")
    assert "execute-api:ManageConnections" in actions("track_execution")
    assert "events:PutEvents" not in actions("track_execution")
    ws = actions("ws_connect")
    assert "execute-api:ManageConnections" in ws
    assert "secretsmanager:GetSecretValue" not in ws
    assert "events:PutEvents" not in ws
    assert "execute-api:ManageConnections" not in actions("migrate")
    admin = actions("admin")
    assert "execute-api:ManageConnections" in admin  # BROKER_STATUS to every client
    assert "events:PutEvents" not in admin
    # AND it reads the services' database secret, never the brokers' credentials
    secrets = dev.find_resources("AWS::SecretsManager::Secret")
    broker_secret = next(k for k in secrets if k.startswith("Brokers"))
    admin_statements = policy_statements(dev, function_by_handler(dev, "admin")[0])
    assert broker_secret not in str(admin_statements)
    assert broker_secret in str(policy_statements(dev, function_by_handler(dev, "route_order")[0]))


def test_code_asset_holds_only_the_function_and_shared(tmp_path: Path) -> None:
    # GIVEN the repository WHEN CDK stages route_order's asset with the factory's excludes
    # THEN the staged folder holds functions/route_order/ and shared/ and nothing else
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Assets")
    staging = cdk.AssetStaging(
        stack,
        "RouteOrder",
        source_path=str(ROOT),
        exclude=code_excludes("route_order"),
        ignore_mode=cdk.IgnoreMode.GIT,
    )
    staged = Path(staging.absolute_staged_path)
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert files
    assert {f.split("/")[0] for f in files} == {"functions", "shared"}
    functions = {f for f in files if f.startswith("functions/")}
    assert all(
        f == "functions/__init__.py" or f.startswith("functions/route_order/") for f in functions
    )
    assert "shared/settings.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def test_factory_refuses_an_unsized_function_or_one_without_a_dlq_decision(
    tmp_path: Path,
) -> None:
    # GIVEN a factory in a throwaway stack (an empty built layer)
    layer_dir = tmp_path / "layer"
    (layer_dir / "python").mkdir(parents=True)
    (layer_dir / layer.STAMP_NAME).write_text("stamp")
    stack = cdk.Stack(cdk.App(), "Throwaway")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0)
    factory = FunctionFactory(
        stack,
        "Functions",
        config=DeployConfig(stage="dev", dashboard_origin="http://localhost:5173"),
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        layer_dir=layer_dir,
    )
    # WHEN a function has neither a DLQ nor the reason it needs none THEN it is refused
    with pytest.raises(ValueError, match="no_dlq_reason"):
        factory.create("route_order", settings={}, security_groups=[], description="d")
    # WHEN a function has no row in the capacity table THEN it is refused before deployment
    with pytest.raises(KeyError, match=r"no row in infra/capacity\.py"):
        factory.create(
            "unsized", settings={}, security_groups=[], description="d", no_dlq_reason="sync"
        )


def test_only_the_link_flows_seal_broker_tokens(dev: Template) -> None:
    # GIVEN the roles and the connections' KMS key WHEN synthesized
    def actions(name: str) -> set[str]:
        return actions_of(policy_statements(dev, function_by_handler(dev, name)[0]))

    # THEN broker_connections may make data keys and open them, routing and the reconciler
    # may only open them, and no other function touches the key
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= actions("broker_connections")
    for name in ("route_order", "reconcile"):
        assert "kms:Decrypt" in actions(name)
        assert "kms:GenerateDataKey" not in actions(name)
    for name in ("broker_webhook", "track_execution", "ws_connect", "outbox_relay", "migrate"):
        assert not {a for a in actions(name) if a.startswith("kms:")}
    # AND the broker_connections function reaches nothing else of the platform's
    assert "events:PutEvents" not in actions("broker_connections")
    assert "execute-api:ManageConnections" not in actions("broker_connections")


def test_the_connection_key_rotates_and_is_named_in_the_settings(dev: Template) -> None:
    # GIVEN the template WHEN its KMS keys are read
    key_id, key = one(dev, "AWS::KMS::Key")
    # THEN the connections' key rotates, and the functions that use it are configured with it
    assert key["Properties"]["EnableKeyRotation"] is True
    for name in ("broker_connections", "route_order", "reconcile"):
        variables = function_by_handler(dev, name)[1]["Properties"]["Environment"]["Variables"]
        assert variables[f"{ENV_PREFIX}CONNECTION_KMS_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}
