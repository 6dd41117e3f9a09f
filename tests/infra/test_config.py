"""Deployment options read from CDK context."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from infra.config import DEFAULT_DEV_ORIGIN, DeployConfig


def _config(**context: str) -> DeployConfig:
    return DeployConfig.from_context(cdk.App(context=context).node)


def test_defaults_to_dev_without_msk() -> None:
    # GIVEN no context WHEN read THEN a dev deployment with the local dashboard origin
    config = _config()
    assert (config.stage, config.dashboard_origin, config.msk_enabled) == (
        "dev",
        DEFAULT_DEV_ORIGIN,
        False,
    )


def test_msk_needs_flag_and_arn() -> None:
    # GIVEN enableMsk WHEN the ARN is missing THEN it fails; with it THEN MSK is on
    with pytest.raises(ValueError, match="mskClusterArn"):
        _config(enableMsk="true")
    arn = "arn:aws:kafka:ap-south-1:123456789012:cluster/c/u"
    assert _config(enableMsk="true", mskClusterArn=arn).msk_cluster_arn == arn
    assert _config(mskClusterArn=arn).msk_enabled is False


def test_prod_requires_a_dashboard_origin() -> None:
    # GIVEN stage=prod WHEN no origin is given THEN it fails instead of allowing localhost
    with pytest.raises(ValueError, match="dashboardOrigin"):
        _config(stage="prod")
    with pytest.raises(ValueError, match="stage"):
        _config(stage="qa")
    assert _config(stage="prod", dashboardOrigin="https://d.example").is_prod
