"""The real brokers this build can route to: their settings, limits and webhook schemes.

A ``brokers`` row with ``adapter`` ``kite``, ``upstox`` or ``dhan`` keeps its non-secret
settings in ``adapter_config`` (:class:`RealBrokerSettings`); :func:`broker_config` builds such a
row with the broker's published order limits as its eligibility data (``rate_limit_per_s`` and
``adapter_config.limits``) and the webhook scheme the broker's postbacks need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from shared.adapters.brokers import dhan, kite, upstox
from shared.adapters.brokers.gateway import (
    AccountSource,
    ClientGateway,
    TaggedClient,
    secret_account,
    trader_account,
)
from shared.domain.broker_orders import BrokerLimits
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.models import FeeSchedule, FrozenModel
from shared.ports import SecretStore, TraderAccounts


class RealBrokerSettings(FrozenModel):
    """``adapter_config`` of a real broker (nothing secret: the credentials are a reference)."""

    credentials_ref: str | None = Field(default=None, min_length=1)
    """Key in the secret store of one platform account ``{"api_key", "client_id",
    "access_token"}``: used only where traders' connections are not wired (adapter tests);
    orders go out under the trader's own connection (docs/brokers.md)."""
    app_ref: str | None = Field(default=None, min_length=1)
    """Key in the secret store of the app's credentials for the link flow: Kite
    ``{"api_key", "api_secret"}``, Upstox ``{"client_id", "client_secret", "redirect_uri"}``."""
    login_url: str | None = None
    """Where traders log in (Kite, Upstox); the broker's own page when absent."""
    base_url: str | None = None
    """API root; the broker's production URL when absent; a simulator's in local mode."""
    order_base_url: str | None = None
    """Upstox only: the order (HFT) host, when it differs from ``base_url``."""
    instruments: dict[str, str] = Field(default_factory=dict)
    """Upstox only: ``"NSE:RELIANCE"`` -> instrument key ``"NSE_EQ|INE002A01018"``."""
    security_ids: dict[str, str] = Field(default_factory=dict)
    """Dhan only: ``"NSE:RELIANCE"`` -> security id ``"2885"``."""
    limits: BrokerLimits | None = None
    """The broker's order limits per account (its published ones when absent)."""


@dataclass(frozen=True, slots=True)
class BrokerKind:
    """What one real broker adapter needs."""

    limits: BrokerLimits
    webhook_auth: WebhookAuth


KINDS: Mapping[str, BrokerKind] = {
    "kite": BrokerKind(kite.LIMITS, WebhookAuth.KITE_CHECKSUM),
    "upstox": BrokerKind(upstox.LIMITS, WebhookAuth.PATH_TOKEN),
    "dhan": BrokerKind(dhan.LIMITS, WebhookAuth.PATH_TOKEN),
}
"""``brokers.adapter`` -> published limits and webhook verification."""


def build_client(adapter: str, settings: RealBrokerSettings) -> TaggedClient:
    """The order API client of ``adapter`` pointed at ``settings.base_url``."""
    if adapter == "kite":
        return kite.KiteClient(settings.base_url or kite.BASE_URL)
    if adapter == "upstox":
        return upstox.UpstoxClient(
            settings.base_url or upstox.BASE_URL,
            order_base_url=settings.order_base_url,
            instruments=settings.instruments,
        )
    if adapter == "dhan":
        return dhan.DhanClient(
            settings.base_url or dhan.BASE_URL, security_ids=settings.security_ids
        )
    raise ValueError(f"{adapter!r} is not a real broker adapter")


def real_settings(config: BrokerConfig) -> RealBrokerSettings | str:
    """A real broker's settings, or why its ``adapter_config`` is unusable."""
    try:
        return RealBrokerSettings.model_validate(config.adapter_config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "adapter_config"
        return f"adapter_config.{where}: {first['msg']}"


def build_gateway(
    config: BrokerConfig, secrets: SecretStore | None, accounts: TraderAccounts | None = None
) -> ClientGateway | str:
    """The gateway of a real broker, or why it cannot be built (a reason for the decision).

    With ``accounts`` each child goes out under its trader's own connection; without, under
    the platform account of ``credentials_ref`` (adapter tests).
    """
    settings = real_settings(config)
    if isinstance(settings, str):
        return settings
    account: AccountSource
    if accounts is not None:
        account = trader_account(accounts, config.broker_id)
    elif secrets is not None and settings.credentials_ref:
        account = secret_account(secrets, settings.credentials_ref)
    else:
        return "no trader connections and no platform credentials configured"
    return ClientGateway(
        config.broker_id,
        build_client(config.adapter, settings),
        account,
        on_token_rejected=accounts.token_rejected if accounts is not None else None,
    )


def broker_config(
    broker_id: str,
    adapter: str,
    *,
    display_name: str,
    settings: RealBrokerSettings,
    webhook_secret_ref: str,
    fee_schedule: FeeSchedule | None = None,
    **extra: Any,
) -> BrokerConfig:
    """A ``brokers`` row for a real broker, its published limits filled in.

    Parameters
    ----------
    broker_id, display_name
        Our id and name of the broker.
    adapter
        ``kite``, ``upstox`` or ``dhan``.
    settings
        Its adapter settings; ``settings.limits`` overrides the published limits (an account
        with raised limits).
    webhook_secret_ref
        Key of the webhook secret: Kite's API secret (its checksum), or the URL token of
        Upstox and Dhan.
    fee_schedule
        Brokerage and charges (the default schedule when absent).
    extra
        Other :class:`BrokerConfig` fields (``lot_size``, ``freeze_quantity``...).

    Returns
    -------
    BrokerConfig
        ``rate_limit_per_s`` is the per-second order limit (what eligibility counts today);
        ``adapter_config.limits`` carries the per-minute, per-hour and per-day ones too.
    """
    kind = KINDS[adapter]
    limits = settings.limits or kind.limits
    adapter_config = settings.model_copy(update={"limits": limits}).model_dump(
        mode="json", exclude_none=True
    )
    return BrokerConfig(
        broker_id=broker_id,
        display_name=display_name,
        adapter=adapter,
        adapter_config=adapter_config,
        webhook_auth=kind.webhook_auth,
        webhook_secret_ref=webhook_secret_ref,
        fee_schedule=fee_schedule or FeeSchedule(),
        rate_limit_per_s=limits.per_second,
        **extra,
    )
