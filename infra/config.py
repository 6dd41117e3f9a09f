"""Deployment options read from CDK context (``cdk.json`` or ``-c key=value``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from constructs import Node

Stage = Literal["dev", "prod"]

DEFAULT_DEV_ORIGIN = "http://localhost:5173"


def _flag(value: object) -> bool:
    # -c values arrive as strings, cdk.json values as JSON: accept both spellings.
    return value is True or str(value).lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class DeployConfig:
    """Options of one deployment.

    Attributes
    ----------
    stage
        ``dev`` (cheap, disposable) or ``prod`` (deletion protection, snapshots, retained EIP).
    dashboard_origin
        The trader dashboard's origin allowed by CORS.
    nat_gateways
        NAT gateways, each with its own Elastic IP that brokers must whitelist.
    msk_cluster_arn
        MSK cluster feeding ``order-executions``; ``None`` leaves the MSK source out.
    alarm_email
        Optional address subscribed to the alarm topic.
    market_data_api_key
        The platform Kite app's API key for market data (its access token lives in the broker
        secret under ``market-data/kite``; docs/market-data.md).
    """

    stage: Stage
    dashboard_origin: str
    nat_gateways: int = 1
    msk_cluster_arn: str | None = None
    alarm_email: str | None = None
    market_data_api_key: str | None = None

    @property
    def is_prod(self) -> bool:
        """Whether data must survive a stack deletion."""
        return self.stage == "prod"

    @property
    def msk_enabled(self) -> bool:
        """Whether the optional MSK event source is wired."""
        return self.msk_cluster_arn is not None

    @classmethod
    def from_context(cls, node: Node) -> DeployConfig:
        """Read and validate the options from a construct's context.

        Parameters
        ----------
        node
            Any construct node of the app (context is inherited).

        Returns
        -------
        DeployConfig
            The validated options.

        Raises
        ------
        ValueError
            On an unknown stage, a prod deployment without ``dashboardOrigin``, or
            ``enableMsk`` without ``mskClusterArn``.
        """
        stage = str(node.try_get_context("stage") or "dev")
        if stage not in ("dev", "prod"):
            raise ValueError(f"context stage must be dev or prod, not {stage!r}")
        origin = node.try_get_context("dashboardOrigin")
        if origin is None and stage == "prod":
            raise ValueError("prod needs -c dashboardOrigin=https://your-dashboard.example")
        msk_arn = node.try_get_context("mskClusterArn")
        if _flag(node.try_get_context("enableMsk")):
            if not msk_arn:
                raise ValueError("enableMsk=true needs -c mskClusterArn=arn:aws:kafka:...")
        else:
            msk_arn = None
        email = node.try_get_context("alarmEmail")
        return cls(
            stage=cast(Stage, stage),
            dashboard_origin=str(origin or DEFAULT_DEV_ORIGIN),
            nat_gateways=int(node.try_get_context("natGateways") or 1),
            msk_cluster_arn=str(msk_arn) if msk_arn else None,
            alarm_email=str(email) if email else None,
            market_data_api_key=str(node.try_get_context("marketDataApiKey") or "") or None,
        )
