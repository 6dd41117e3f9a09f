"""Broker administration (the admin API, Cognito group ADMIN): pure models and rules.

An operator registers and updates brokers and sets a broker's routing status with a reason;
every change is an audit row. A status other than ``ACTIVE`` overrides each of the broker's
profiles' own status, so routing excludes the broker with that status as its reason
(``docs/api.md``, "Admin API").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from shared.domain.adapter_config import check_adapter_config
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.errors import AuthenticationError, ForbiddenError
from shared.domain.identity import GROUPS_CLAIM, TraderIdentity, parse_groups
from shared.domain.models import (
    BROKER_ID_PATTERN,
    BrokerProfile,
    FeeSchedule,
    FrozenModel,
    OrderType,
)

ADMIN_GROUP = "ADMIN"
MAX_REASON_CHARS = 500


class RoutingStatus(StrEnum):
    """A broker's routing status as an operator sets it."""

    ACTIVE = "ACTIVE"
    MAINTENANCE = "MAINTENANCE"
    SUSPENDED = "SUSPENDED"


class AuditAction(StrEnum):
    """What an audit row records."""

    REGISTER = "REGISTER"
    UPDATE = "UPDATE"
    STATUS = "STATUS"


class BrokerAdminView(FrozenModel):
    """A broker as an operator sees it: configuration (secrets only by reference), status."""

    broker: BrokerConfig
    status: RoutingStatus
    reason: str | None = None
    status_changed_at: datetime | None = None


class BrokerRegistration(FrozenModel):
    """``POST /admin/brokers``: a new broker (its secrets live in the secret store by ref)."""

    broker_id: str = Field(pattern=BROKER_ID_PATTERN)
    display_name: str = Field(min_length=1, max_length=100)
    adapter: str = Field(pattern=r"^(paper|kite|upstox|dhan|generic)$")
    adapter_config: dict[str, Any] = Field(default_factory=dict)
    webhook_auth: WebhookAuth
    webhook_secret_ref: str = Field(min_length=1, max_length=200)
    fee_schedule: FeeSchedule = FeeSchedule()
    supported_order_types: frozenset[OrderType] = frozenset(OrderType)
    lot_size: int = Field(default=1, ge=1, le=1_000_000)
    freeze_quantity: int | None = Field(default=None, gt=0)
    rate_limit_per_s: int | None = Field(default=None, gt=0, le=100_000)

    def to_config(self) -> BrokerConfig:
        """The broker's configuration (enabled).

        Raises
        ------
        InvalidRequestError
            ``adapterConfig`` is not what its adapter takes (:func:`check_adapter_config`).
        """
        check_adapter_config(self.adapter, self.adapter_config)
        return BrokerConfig.model_validate(self.model_dump())


class BrokerUpdate(FrozenModel):
    """``PATCH /admin/brokers/{brokerId}``: the fields to change (absent ones stay)."""

    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    adapter_config: dict[str, Any] | None = None
    webhook_auth: WebhookAuth | None = None
    webhook_secret_ref: str | None = Field(default=None, min_length=1, max_length=200)
    fee_schedule: FeeSchedule | None = None
    rate_limit_per_s: int | None = Field(default=None, gt=0, le=100_000)

    def changes(self) -> dict[str, Any]:
        """The fields given in the request, whole, by field name (JSON, for the audit row)."""
        return self.model_dump(mode="json", include=self.model_fields_set)

    def apply(self, broker: BrokerConfig) -> BrokerConfig:
        """``broker`` with each field this update gives replaced whole.

        A fee schedule given replaces the broker's whole schedule (its parts left out take their
        defaults), so what is stored is exactly what the request and the audit row say.

        Raises
        ------
        InvalidRequestError
            ``adapterConfig`` is not what the broker's adapter takes (nothing is changed).
        """
        given = {name: getattr(self, name) for name in self.model_fields_set}
        if self.adapter_config is not None:
            check_adapter_config(broker.adapter, self.adapter_config)
        return broker.model_copy(update=given)


class StatusChange(FrozenModel):
    """``PUT /admin/brokers/{brokerId}/status``."""

    status: RoutingStatus
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class AuditEntry(FrozenModel):
    """One administrative change (``broker_audit``)."""

    id: int
    broker_id: str
    action: AuditAction
    old_status: RoutingStatus | None = None
    new_status: RoutingStatus | None = None
    reason: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)
    actor: str
    changed_at: datetime


class BrokerStatusMessage(FrozenModel):
    """The ``BROKER_STATUS`` push (and one broker of a ``ROUTING_STATUS`` reply)."""

    broker_id: str
    status: RoutingStatus
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None


def admin_from_claims(claims: Mapping[str, Any] | None) -> TraderIdentity:
    """The verified operator of an admin request.

    Raises
    ------
    AuthenticationError
        No claims or no subject (401).
    ForbiddenError
        A verified caller outside the ADMIN group, a trader included (403).
    """
    if not claims or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise AuthenticationError("missing or invalid bearer token")
    groups = parse_groups(claims.get(GROUPS_CLAIM))
    if ADMIN_GROUP not in groups:
        raise ForbiddenError("the ADMIN role is required")
    return TraderIdentity(user_id=claims["sub"], groups=groups)


# -- answers of the admin API -------------------------------------------------------------------


class BrokerList(FrozenModel):
    """``GET /admin/brokers``."""

    brokers: tuple[BrokerAdminView, ...]


class ProfileList(FrozenModel):
    """``GET /admin/profiles``: profiles with the status routing applies to them."""

    profiles: tuple[BrokerProfile, ...]


class HeldReportView(FrozenModel):
    """One quarantined execution report."""

    id: int
    quarantined_at: datetime
    stage: str
    reason: str
    field: str | None = None
    message: str
    report_key: str
    broker_id: str
    child_order_id: str | None = None
    order_id: str | None = None
    report: dict[str, Any]


class QuarantineList(FrozenModel):
    """``GET /admin/quarantine``: newest first."""

    reports: tuple[HeldReportView, ...]


class AuditList(FrozenModel):
    """``GET /admin/audit``: newest first."""

    entries: tuple[AuditEntry, ...]
