"""The admin API's use cases: brokers, their routing status, profiles, quarantine and audit.

A status change is committed with its audit row, then every cached profile of the broker is
evicted from Redis, so the next order anywhere reads the broker's profiles (and the status that
overrides theirs) from Postgres; then it is pushed to every connected client as
``BROKER_STATUS``. The eviction is not what makes the change hold: routing reads the operator's
statuses from Postgres with the trader's links on every order
(:meth:`shared.services.broker_links.BrokerLinkService.unavailable`), so an eviction that fails
(Redis unreachable from this function, or restarted with its data) leaves at worst cached
figures for the TTL, never flow to a held broker. It is logged and counted
(``ProfileCacheEvictionFailed``) for the alarm.
"""

from __future__ import annotations

import logging

from shared.domain.admin import (
    AuditEntry,
    BrokerAdminView,
    BrokerRegistration,
    BrokerStatusMessage,
    BrokerUpdate,
    RoutingStatus,
    StatusChange,
)
from shared.domain.contracts import MessageType
from shared.domain.errors import CacheUnavailableError
from shared.domain.models import BrokerProfile
from shared.observability import emit_metric
from shared.ports import (
    BrokerAdministration,
    HeldReport,
    Notifier,
    ProfileCache,
    QuarantineRepository,
)

logger = logging.getLogger(__name__)
EVICTION_FAILED_METRIC = "ProfileCacheEvictionFailed"


class AdminService:
    """What ``functions/admin`` calls, one method per route.

    Parameters
    ----------
    brokers
        Broker administration with its audit trail.
    cache
        The profile cache, evicted per broker on a change routing must see at once.
    notifier
        Pushes ``BROKER_STATUS`` to every connection.
    quarantine
        Held execution reports.
    """

    def __init__(
        self,
        *,
        brokers: BrokerAdministration,
        cache: ProfileCache,
        notifier: Notifier,
        quarantine: QuarantineRepository,
    ) -> None:
        self._brokers = brokers
        self._cache = cache
        self._notifier = notifier
        self._quarantine = quarantine

    def list_brokers(self) -> list[BrokerAdminView]:
        """Every broker with its routing status."""
        return self._brokers.list_brokers()

    def register(self, registration: BrokerRegistration, *, actor: str) -> BrokerAdminView:
        """Register a broker (ACTIVE). Raises ``ConflictError`` when the id exists."""
        broker = registration.to_config()
        self._brokers.register(broker, actor=actor)
        self._evict(registration.broker_id)
        return BrokerAdminView(broker=broker, status=RoutingStatus.ACTIVE)

    def update(self, broker_id: str, update: BrokerUpdate, *, actor: str) -> BrokerAdminView:
        """Change a broker's fees, adapter settings or webhook auth. ``NotFoundError`` if none."""
        view = self._brokers.update(broker_id, update, actor=actor)
        self._evict(broker_id)  # the fee schedule travels inside the cached profiles
        return view

    def set_status(self, broker_id: str, change: StatusChange, *, actor: str) -> BrokerAdminView:
        """Set a broker's routing status: audited, effective from the next order, pushed.

        Raises
        ------
        NotFoundError
            No such broker (404).
        DataUnavailableError
            Postgres cannot be reached (nothing changed).
        """
        view, entry = self._brokers.set_status(broker_id, change, actor=actor)
        self._evict(broker_id)
        message = BrokerStatusMessage(
            broker_id=broker_id,
            status=view.status,
            reason=view.reason,
            changed_by=actor,
            changed_at=entry.changed_at,
        )
        pushed = self._notifier.notify_all(
            MessageType.BROKER_STATUS, message.model_dump(mode="json", by_alias=True)
        )
        logger.info(
            "broker status changed",
            extra={"broker_id": broker_id, "status": view.status.value, "pushed": pushed},
        )
        return view

    def profiles(self, *, symbol: str | None, limit: int) -> list[BrokerProfile]:
        """Learned profiles, with the status routing applies."""
        return self._brokers.profiles(symbol=symbol, limit=limit)

    def quarantined(self, *, limit: int, reason: str | None) -> list[HeldReport]:
        """Held execution reports, newest first."""
        return self._quarantine.list_recent(limit=limit, reason=reason)

    def audit(self, *, limit: int, broker_id: str | None = None) -> list[AuditEntry]:
        """The administrative audit trail, newest first."""
        return self._brokers.audit(limit=limit, broker_id=broker_id)

    def _evict(self, broker_id: str) -> None:
        # With Redis down, routing reads Postgres, so there is nothing stale to evict; an entry
        # written before a short outage expires within the profile TTL (hence the warning).
        try:
            self._cache.evict_broker(broker_id)
        except CacheUnavailableError:
            logger.warning(
                "profile cache not evicted; routing reads the status from Postgres",
                extra={"broker_id": broker_id},
            )
            emit_metric(EVICTION_FAILED_METRIC, 1)
