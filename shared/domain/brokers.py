"""Broker-level configuration, as kept in the ``brokers`` table."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from shared.domain.models import BROKER_ID_PATTERN, FeeSchedule, FrozenModel, OrderType


class WebhookAuth(StrEnum):
    """How a broker's execution webhooks are verified."""

    KITE_CHECKSUM = "KITE_CHECKSUM"
    """Zerodha Kite: SHA-256 of order_id + order_timestamp + api_secret in the payload."""
    HMAC = "HMAC"
    """Paper and generic brokers: HMAC-SHA256 of timestamp + "." + body in headers."""
    PATH_TOKEN = "PATH_TOKEN"  # noqa: S105 - a scheme name, not a secret
    """Brokers that do not sign (Upstox, Dhan): a secret token in the webhook URL."""


class BrokerConfig(FrozenModel):
    """A broker we can route to: adapter, webhook verification and trading rules."""

    broker_id: str = Field(pattern=BROKER_ID_PATTERN)
    display_name: str
    adapter: str = Field(description="paper, kite, upstox, dhan or generic")
    adapter_config: dict[str, Any] = Field(default_factory=dict)
    """Adapter settings that are not secret (the paper broker's hidden behaviour, API base URLs)."""
    webhook_auth: WebhookAuth
    webhook_secret_ref: str = Field(description="key of the webhook secret in the secret store")
    fee_schedule: FeeSchedule = FeeSchedule()
    supported_order_types: frozenset[OrderType] = frozenset(OrderType)
    lot_size: int = Field(default=1, ge=1)
    freeze_quantity: int | None = Field(default=None, gt=0)
    rate_limit_per_s: int | None = Field(default=None, gt=0)
    enabled: bool = True
