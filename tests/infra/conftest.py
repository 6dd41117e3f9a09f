"""One synthesis per test session: a dev stack (from cdk.json context) and a prod stack with MSK.

Both stacks live in one app so that jsii, cdk-nag and the synthesis run once (~15 s on 2 cores).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii reads this when it starts node (at the first aws_cdk import): keep the banner out.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import DEFAULT_REGION, PLACEHOLDER_ACCOUNT, build_app
from infra.config import DeployConfig
from infra.stack import OrderRouterStack

ROOT = Path(__file__).resolve().parents[2]
MSK_ARN = f"arn:aws:kafka:{DEFAULT_REGION}:{PLACEHOLDER_ACCOUNT}:cluster/executions/0a1b2c3d-4"
DASHBOARD = "https://dashboard.example.com"


@dataclass(frozen=True)
class Synthesized:
    """The synthesized assembly and the templates of both stacks."""

    outdir: Path
    dev: Template
    prod: Template

    @property
    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    # Reference assets in place instead of copying 80 MB of layer per synthesis.
    context["aws:cdk:disable-asset-staging"] = True
    os.environ.pop("CDK_DEFAULT_ACCOUNT", None)
    os.environ.pop("CDK_DEFAULT_REGION", None)
    app = build_app(cdk.App(context=context, outdir=str(outdir)))
    dev = next(c for c in app.node.children if isinstance(c, OrderRouterStack))
    prod = OrderRouterStack(
        app,
        "OrderRouter-prod",
        config=DeployConfig(
            stage="prod", dashboard_origin=DASHBOARD, nat_gateways=2, msk_cluster_arn=MSK_ARN
        ),
        env=cdk.Environment(account=PLACEHOLDER_ACCOUNT, region=DEFAULT_REGION),
    )
    # Raises if cdk-nag reports any unacknowledged finding.
    app.synth()
    return Synthesized(
        outdir=outdir,
        dev=Template.from_stack(dev),
        prod=Template.from_stack(prod),
    )


@pytest.fixture(scope="session")
def dev(synthesized: Synthesized) -> Template:
    return synthesized.dev


@pytest.fixture(scope="session")
def prod(synthesized: Synthesized) -> Template:
    return synthesized.prod


def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    """All resources of a type, by logical id."""
    return {key: dict(value) for key, value in template.find_resources(type_).items()}


def one(template: Template, type_: str) -> tuple[str, dict[str, Any]]:
    """The single resource of a type."""
    found = resources(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return next(iter(found.items()))


def function_by_handler(template: Template, name: str) -> tuple[str, dict[str, Any]]:
    """The function whose handler is functions.<name>.handler.lambda_handler."""
    handler = f"functions.{name}.handler.lambda_handler"
    for logical_id, res in resources(template, "AWS::Lambda::Function").items():
        if res["Properties"].get("Handler") == handler:
            return logical_id, res
    raise AssertionError(f"no function with handler {handler}")


def policy_statements(template: Template, function_logical_id: str) -> list[dict[str, Any]]:
    """Statements of the inline policies attached to a function's role."""
    fn = resources(template, "AWS::Lambda::Function")[function_logical_id]
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    """Every action granted by the statements."""
    found: set[str] = set()
    for statement in statements:
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found
