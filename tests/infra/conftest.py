"""One synthesis per test session: a dev stack (from cdk.json context) and a prod stack with MSK.

Both stacks live in one app so that jsii, cdk-nag and the synthesis run once (~15 s on 2 cores).
"""

from __future__ import annotations

import json
import os

# jsii reads this when it starts node (at the first aws_cdk import): keep the banner out.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import DEFAULT_REGION, PLACEHOLDER_ACCOUNT, build_app
from infra.config import DeployConfig
from infra.stack import OrderRouterStack
from tests.infra.support import DASHBOARD, MSK_ARN, ROOT, Synthesized


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
