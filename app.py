"""CDK entry point: ``npx cdk synth`` / ``deploy`` run this (see ``cdk.json``).

Nothing here calls AWS: the account and region default to placeholders whose availability zones
are in ``cdk.json``, so synthesis works offline; ``cdk deploy`` with credentials supplies the real
ones through ``CDK_DEFAULT_ACCOUNT``/``CDK_DEFAULT_REGION``.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import DeployConfig
from infra.layer import build_layer
from infra.stack import OrderRouterStack

PLACEHOLDER_ACCOUNT = "123456789012"
DEFAULT_REGION = "ap-south-1"


def build_app(app: cdk.App | None = None) -> cdk.App:
    """Create the app with the order router stack and the cdk-nag AwsSolutions checks.

    Parameters
    ----------
    app
        An app to add to (tests pass one with their own context and outdir).

    Returns
    -------
    aws_cdk.App
        The app, ready for ``synth()``.
    """
    app = app or cdk.App()
    config = DeployConfig.from_context(app.node)
    # cdk-nag 3 runs as a policy-validation plugin: any unacknowledged finding fails synthesis.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    OrderRouterStack(
        app,
        f"OrderRouter-{config.stage}",
        config=config,
        layer_dir=build_layer(),
        env=deployment_env(app),
        description=f"Intelligent order routing service ({config.stage})",
    )
    return app


def deployment_env(app: cdk.App) -> cdk.Environment:
    """The account and region to synthesize for.

    Without credentials the CLI leaves ``CDK_DEFAULT_ACCOUNT`` unset but still sets
    ``CDK_DEFAULT_REGION`` (``us-east-1`` by default): the placeholder account then goes with
    ``ap-south-1`` (or ``-c region=...``), whose availability zones ``cdk.json`` holds, so no
    lookup is attempted. With credentials the real account and region are used.

    Parameters
    ----------
    app
        The app (its context may hold ``region``).

    Returns
    -------
    aws_cdk.Environment
        Account and region of the stack.
    """
    region = app.node.try_get_context("region")
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    if account is None:
        return cdk.Environment(account=PLACEHOLDER_ACCOUNT, region=str(region or DEFAULT_REGION))
    return cdk.Environment(
        account=account,
        region=str(region or os.environ.get("CDK_DEFAULT_REGION") or DEFAULT_REGION),
    )


if __name__ == "__main__":
    build_app().synth()
