"""A trader's link to a broker account: its status, its expiry and the checks of the link flows.

A real broker (``adapter`` ``kite``, ``upstox`` or ``dhan``) takes an order only under the
trader's own account, so each trader links each broker (docs/brokers.md, "Trader broker
connections"). Pure: the clock and the random values are passed in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta, timezone
from enum import StrEnum

from pydantic import Field

from shared.domain.models import FrozenModel

PAPER_ADAPTER = "paper"
"""Simulated in process: no account, no link needed."""
LINKED_ADAPTERS = frozenset({"kite", "upstox", "dhan"})
"""Adapters that place under the trader's own linked account."""

IST = timezone(timedelta(hours=5, minutes=30), "IST")
KITE_EXPIRY = time(6, 0)
"""Kite access tokens expire at 06:00 IST the next morning (Kite Connect v3 user docs)."""
UPSTOX_EXPIRY = time(3, 30)
"""Upstox access tokens expire at 03:30 IST the next day (Upstox API authentication docs)."""


class LinkStatus(StrEnum):
    """A connection's status.

    ``LIVE``: usable; ``EXPIRED``: the broker refused it or its time passed; ``REVOKED``: the
    trader unlinked it (the token is erased).
    """

    LIVE = "LIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class BrokerLink(FrozenModel):
    """What we know of one trader's link to one broker (never the token itself)."""

    user_id: str = Field(min_length=1)
    broker_id: str = Field(min_length=1)
    status: LinkStatus
    linked_at: datetime
    expires_at: datetime | None = None
    account_hint: str | None = None
    """The broker's account id, masked (``AB***34``): enough to recognise, not to use."""
    updated_at: datetime

    def live_at(self, now: datetime) -> bool:
        """Whether an order may go out under this link at ``now``."""
        return self.status is LinkStatus.LIVE and (self.expires_at is None or self.expires_at > now)

    def status_at(self, now: datetime) -> LinkStatus:
        """The status a trader sees: a LIVE link past its expiry is EXPIRED."""
        if self.status is LinkStatus.LIVE and not self.live_at(now):
            return LinkStatus.EXPIRED
        return self.status


def next_ist(now: datetime, at: time) -> datetime:
    """The first ``at`` (IST wall clock) strictly after ``now``."""
    local = now.astimezone(IST)
    candidate = datetime.combine(local.date(), at, tzinfo=IST)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


def mask_account(account_id: str) -> str:
    """``AB1234`` -> ``AB**34``: a hint the trader recognises, useless to anyone else."""
    if len(account_id) <= 4:
        return "*" * len(account_id)
    return account_id[:2] + "*" * (len(account_id) - 4) + account_id[-2:]


def kite_checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """Kite's session checksum: SHA-256 hex of ``api_key + request_token + api_secret``."""
    return hashlib.sha256(f"{api_key}{request_token}{api_secret}".encode()).hexdigest()


def state_digest(state: str) -> str:
    """What is stored of an OAuth ``state``: its SHA-256, so a database read cannot replay it."""
    return hashlib.sha256(state.encode()).hexdigest()


def link_reason(broker_id: str, adapter: str, link: BrokerLink | None, now: datetime) -> str | None:
    """Why the trader cannot route to this broker through its adapter, or ``None``.

    Parameters
    ----------
    broker_id
        The broker.
    adapter
        Its ``brokers.adapter``.
    link
        The trader's link to it, if any.
    now
        Current time.

    Returns
    -------
    str | None
        A sentence for the decision's excluded brokers.
    """
    if adapter == PAPER_ADAPTER:
        return None
    if adapter not in LINKED_ADAPTERS:
        return f"no adapter available for broker {broker_id}: adapter {adapter!r}"
    if link is None:
        return f"no {adapter} connection: link your {broker_id} account first"
    status = link.status_at(now)
    if status is LinkStatus.LIVE:
        return None
    if status is LinkStatus.REVOKED:
        return f"{adapter} connection was unlinked: link your {broker_id} account again"
    return f"{adapter} connection expired: log in to {broker_id} again"
