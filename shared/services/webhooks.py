"""Broker webhooks: verify, normalise, and publish exactly one event per report."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from cachetools import TTLCache

from shared.adapters.brokers.webhooks import (
    NORMALISERS,
    parse_json_body,
    verify_kite_checksum,
    verify_path_token,
    verify_signed_webhook,
)
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.errors import AuthenticationError, NotFoundError
from shared.domain.orders import DomainEvent, execution_reported_event
from shared.ports import BrokerRepository, EventPublisher, OrderRepository, Outbox, SecretStore

# Event ids derive from the report's idempotency key, so a broker retrying the same postback
# produces the same id and the outbox stores (and publishes) it once.
_EVENT_NAMESPACE = uuid.UUID("9d5c3f4e-59a4-4f0e-9a53-0c6b8e7e2f10")


_UNKNOWN = object()


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What happened to one webhook."""

    status: str
    """``accepted`` (a new report, event published or queued), ``duplicate`` or ``ignored``."""
    idempotency_key: str | None = None
    reason: str | None = None


class WebhookService:
    """The ``broker_webhook`` function's one service."""

    def __init__(
        self,
        *,
        brokers: BrokerRepository,
        secrets: SecretStore,
        orders: OrderRepository,
        outbox: Outbox,
        publisher: EventPublisher,
        clock: Callable[[], datetime],
    ) -> None:
        self._brokers = brokers
        self._secrets = secrets
        self._orders = orders
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
        """Verify and ingest one webhook.

        Raises
        ------
        NotFoundError
            Unknown broker (404).
        AuthenticationError
            Bad signature, checksum or token (401); nothing is stored or published.
        MalformedPayloadError
            The payload is not what the broker's format promises (400), naming the field.
        """
        broker = self._broker(broker_id)
        secrets = self._secrets.get(broker.webhook_secret_ref)
        if not secrets:
            raise AuthenticationError(f"no webhook secret configured for {broker_id}")
        # Verify before parsing wherever the scheme allows: unauthenticated bytes are not parsed.
        if broker.webhook_auth is WebhookAuth.HMAC:
            verify_signed_webhook(headers, body, secrets, now=self._clock())
        elif broker.webhook_auth is WebhookAuth.PATH_TOKEN:
            verify_path_token(token, secrets)
        payload = parse_json_body(body)
        if broker.webhook_auth is WebhookAuth.KITE_CHECKSUM:
            verify_kite_checksum(payload, secrets)
        normalise = NORMALISERS.get(broker.adapter, NORMALISERS["generic"])
        report = normalise(payload, broker_id=broker.broker_id)
        child_id = report.child_order_id
        child = self._orders.get_child(child_id) if child_id else None
        if child is None:
            child = self._orders.find_child_by_broker_order(
                broker.broker_id, report.broker_order_id
            )
        if child is None or child.broker_id != broker.broker_id:
            # A postback for an order we did not route (e.g. placed by hand in the same broker
            # account): acknowledged so the broker stops retrying, and not stored.
            return WebhookOutcome(
                status="ignored", idempotency_key=report.idempotency_key, reason="unknown order"
            )
        event = execution_reported_event(
            child.order_id,
            child.user_id,
            report,
            uuid.uuid5(_EVENT_NAMESPACE, report.idempotency_key),
        )
        if not self._outbox.add([event]):
            return WebhookOutcome(status="duplicate", idempotency_key=report.idempotency_key)
        self._publish(event)
        return WebhookOutcome(status="accepted", idempotency_key=report.idempotency_key)

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
