"""Broker webhooks: verify, normalise, validate against the child, then publish or quarantine."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from cachetools import TTLCache

from shared.domain.brokers import BrokerConfig
from shared.domain.contracts import DomainEvent, execution_reported_event
from shared.domain.errors import AuthenticationError, ImpossibleReportError, NotFoundError
from shared.domain.execution import ExecutionReport
from shared.domain.orders import ChildOrder
from shared.domain.report_validation import (
    QuarantineReason,
    ReportViolation,
    check_report,
    report_fingerprint,
)
from shared.ports import (
    BrokerRepository,
    EventPublisher,
    ExecutionRepository,
    HeldReport,
    OrderRepository,
    Outbox,
    QuarantinedReport,
    QuarantineRepository,
    SecretStore,
    WebhookReader,
)

# Event ids derive from the report's content (its fingerprint), so a broker retrying the same
# postback produces the same id and the outbox stores it once, while a corrected report with
# the same idempotency key is a new event.
_EVENT_NAMESPACE = uuid.UUID("9d5c3f4e-59a4-4f0e-9a53-0c6b8e7e2f10")


_UNKNOWN = object()


def reported_event(child: ChildOrder, report: ExecutionReport) -> DomainEvent:
    """``ExecutionReported`` of ``report`` on ``child``, its id derived from the report's content.

    Webhooks and the poller (:mod:`shared.services.polling`) both publish through this, so the
    same report from either source is one event, and the tracker stores each report key once.
    """
    return execution_reported_event(
        child.order_id,
        child.user_id,
        report,
        uuid.uuid5(_EVENT_NAMESPACE, report_fingerprint(report)),
    )


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What happened to one webhook (every one of them answers 202)."""

    status: str
    """``accepted`` (a new report, or a copy of one not yet applied: event published or
    queued), ``duplicate`` (its key is applied), ``quarantined`` (impossible: held with its
    reason, never applied) or ``ignored`` (an order we did not route)."""
    idempotency_key: str | None = None
    reason: str | None = None
    field: str | None = None
    message: str | None = None


class WebhookService:
    """The ``broker_webhook`` function's one service."""

    def __init__(
        self,
        *,
        brokers: BrokerRepository,
        secrets: SecretStore,
        reader: WebhookReader,
        orders: OrderRepository,
        executions: ExecutionRepository,
        quarantine: QuarantineRepository,
        outbox: Outbox,
        publisher: EventPublisher,
        clock: Callable[[], datetime],
    ) -> None:
        self._brokers = brokers
        self._secrets = secrets
        self._reader = reader
        self._orders = orders
        self._executions = executions
        self._quarantine = quarantine
        self._outbox = outbox
        self._publisher = publisher
        self._clock = clock
        self._configs: TTLCache[str, BrokerConfig | None] = TTLCache(maxsize=256, ttl=60)

    def receive(
        self,
        broker_id: str,
        *,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> WebhookOutcome:
        """Verify, validate against its child, then ingest or quarantine one webhook.

        Raises
        ------
        NotFoundError
            Unknown broker (404).
        AuthenticationError
            Bad signature, checksum or token (401); nothing is stored or published.
        MalformedPayloadError
            The body is not what the broker's format promises (400), naming the field:
            not UTF-8, too large or deep, not JSON, a missing or ill-typed field.
        """
        broker = self._broker(broker_id)
        secrets = self._secrets.get(broker.webhook_secret_ref)
        if not secrets:
            raise AuthenticationError(f"no webhook secret configured for {broker_id}")
        try:
            report = self._reader.read(
                broker, secrets, headers=headers, body=body, token=token, now=self._clock()
            )
        except ImpossibleReportError as exc:
            # Authenticated and well formed, but its own figures contradict each other.
            impossible = ReportViolation(
                reason=QuarantineReason.IMPOSSIBLE_REPORT, field=exc.field, message=exc.reason
            )
            return self._hold(exc.unchecked, self._child_of(exc.unchecked), impossible)
        child = self._child_of(report)
        if child is None:
            # A postback for an order we did not route (e.g. placed by hand in the same broker
            # account): acknowledged so the broker stops retrying, and not stored.
            return WebhookOutcome(
                status="ignored", idempotency_key=report.idempotency_key, reason="unknown order"
            )
        if report.child_order_id != child.child_order_id:
            # Found by the broker's order id: the report's tag was the broker's digest of our
            # id (brokers cap tag length), or absent. Downstream sees our child id.
            report = report.model_copy(update={"child_order_id": child.child_order_id})
        violation = check_report(child, report, now=self._clock())
        if violation is not None:
            return self._hold(report, child, violation)
        key = report.idempotency_key
        # A key is used once its report is applied (or quarantined by the tracker): until
        # then a resend goes through again, so a copy that failed downstream is not lost.
        if self._executions.applied_keys([key]):
            return WebhookOutcome(status="duplicate", idempotency_key=key)
        event = reported_event(child, report)
        # A copy already in the outbox is published again: it is not applied, so it may have
        # failed in tracking or be lost; the tracker stores each key once whatever it receives.
        self._outbox.add([event])
        self._publish(event)
        return WebhookOutcome(status="accepted", idempotency_key=key)

    def quarantined(self, *, limit: int = 100, reason: str | None = None) -> list[HeldReport]:
        """The newest quarantined reports first (an operator's list), optionally of one reason.

        Parameters
        ----------
        limit
            At most this many (1 to 1,000).
        reason
            Only this :class:`~shared.domain.report_validation.QuarantineReason`.

        Raises
        ------
        ValueError
            ``limit`` outside 1 to 1,000 or an unknown reason.
        """
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        if reason is not None and reason not in QuarantineReason.__members__:
            raise ValueError(
                f"unknown reason {reason!r}; one of {', '.join(QuarantineReason.__members__)}"
            )
        return self._quarantine.list_recent(limit=limit, reason=reason)

    def _child_of(self, report: ExecutionReport) -> ChildOrder | None:
        child_id = report.child_order_id
        child = self._orders.get_child(child_id) if child_id else None
        if child is None:
            child = self._orders.find_child_by_broker_order(
                report.broker_id, report.broker_order_id
            )
        return child

    def _hold(
        self, report: ExecutionReport, child: ChildOrder | None, violation: ReportViolation
    ) -> WebhookOutcome:
        self._quarantine.add(
            QuarantinedReport(
                report=report,
                stage="webhook",
                reason=violation.reason.value,
                field=violation.field,
                message=violation.message,
                child_order_id=child.child_order_id if child else None,
                order_id=child.order_id if child else None,
            )
        )
        return WebhookOutcome(
            status="quarantined",
            idempotency_key=report.idempotency_key,
            reason=violation.reason.value,
            field=violation.field,
            message=violation.message,
        )

    def _broker(self, broker_id: str) -> BrokerConfig:
        # One look-up, never "in" then "[]": the entry can expire between the two.
        cached = self._configs.get(broker_id, _UNKNOWN)
        broker: BrokerConfig | None
        if cached is _UNKNOWN:
            broker = self._brokers.get(broker_id)
            self._configs[broker_id] = broker
        else:
            broker = cast("BrokerConfig | None", cached)
        if broker is None or not broker.enabled:
            raise NotFoundError(f"unknown broker {broker_id}")
        return broker

    def _publish(self, event: DomainEvent) -> None:
        # The event is safe in the outbox: a failed publish is left to the relay.
        if self._publisher.publish([event]):
            self._outbox.mark_failed([event.event_id], "publish after webhook failed")
        else:
            self._outbox.mark_published([event.event_id])
