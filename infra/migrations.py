"""Migrations applied at deploy time by a custom resource running the ``migrate`` function."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct, IDependable

from infra import nag

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "shared" / "migrations"


def migrations_hash(directory: Path = MIGRATIONS_DIR) -> str:
    """A hash of every migration file, so that a new or changed migration re-runs the resource.

    Parameters
    ----------
    directory
        Folder of yoyo migration files.

    Returns
    -------
    str
        Hex SHA-256 over the sorted relative paths and contents.
    """
    digest = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(directory).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class Migrations(Construct):
    """A custom resource that runs yoyo migrations through ``migrate`` on every change.

    Parameters
    ----------
    scope, construct_id
        Construct scope and id.
    migrate
        The ``migrate`` function (it receives CloudFormation custom resource events).
    after
        What must exist first (the database writer).
    app_secret_arn
        The services' database secret, whose role ``migrate`` creates and grants.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        migrate: lambda_.IFunction,
        after: list[IDependable],
        app_secret_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=migrate,
            log_group=logs.LogGroup(
                self,
                "ProviderLogs",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
        )
        self.resource = cdk.CustomResource(
            self,
            "Apply",
            service_token=provider.service_token,
            resource_type="Custom::Migrations",
            # The app secret is a property so that the role is (re)granted when it first appears
            # or is replaced, even if no migration file changed.
            properties={"MigrationsHash": migrations_hash(), "AppSecretArn": app_secret_arn},
        )
        for dependency in after:
            self.resource.node.add_dependency(dependency)
        on_event = provider.node.find_child("framework-onEvent")
        for check, reason in nag.CDK_PROVIDER_FUNCTION.items():
            nag.skip_checkov(on_event, check, reason)
        nag.acknowledge(
            provider,
            "IAM4",
            "The CDK provider framework's function only writes its own logs.",
            finding=nag.LAMBDA_BASIC_POLICY,
        )
        nag.acknowledge(
            provider,
            "IAM5",
            "The provider framework may invoke any version of the migrate function (:*).",
            finding=f"Resource::{nag.logical_ref(cdk.Stack.of(self), migrate.function_arn)}:*",
        )
        nag.acknowledge(
            provider,
            "L1",
            "The provider framework's runtime is chosen and kept current by aws-cdk-lib.",
        )
