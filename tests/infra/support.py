"""Helpers of the tests in tests/infra/ (importable: tests never import a conftest module)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii reads this when it starts node (at the first aws_cdk import): keep the banner out.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from app import DEFAULT_REGION, PLACEHOLDER_ACCOUNT

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
