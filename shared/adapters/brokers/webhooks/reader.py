"""One webhook, authenticated by its broker's scheme and read as an ``ExecutionReport``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from shared.adapters.brokers.webhooks import (
    NORMALISERS,
    parse_json_body,
    verify_kite_checksum,
    verify_path_token,
    verify_signed_webhook,
)
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.execution import ExecutionReport


class BrokerWebhookReader:
    """:class:`shared.ports.WebhookReader` for every broker format this build knows."""

    def read(
        self,
        broker: BrokerConfig,
        secrets: Sequence[str],
        *,
        headers: Mapping[str, str],
        body: bytes,
        token: str | None,
        now: datetime,
    ) -> ExecutionReport:
        """Verify ``body`` with ``broker``'s scheme, then parse and normalise it.

        Verification comes before parsing wherever the scheme allows, so unauthenticated bytes
        are not parsed. Kite signs fields inside the body: its body is parsed first, but only
        once ``parse_json_body`` has bounded its size and depth on the raw bytes.

        Raises
        ------
        AuthenticationError
            A bad signature, checksum or token.
        MalformedPayloadError
            The bytes are not what the broker's format promises (``UnsupportedPayloadError``
            for a well-formed update we do not track).
        ImpossibleReportError
            Authentic and well formed, but its own figures contradict each other.
        """
        if broker.webhook_auth is WebhookAuth.HMAC:
            verify_signed_webhook(headers, body, secrets, now=now)
        elif broker.webhook_auth is WebhookAuth.PATH_TOKEN:
            verify_path_token(token, secrets)
        payload = parse_json_body(body)
        if broker.webhook_auth is WebhookAuth.KITE_CHECKSUM:
            verify_kite_checksum(payload, secrets)
        normalise = NORMALISERS.get(broker.adapter, NORMALISERS["generic"])
        return normalise(payload, broker_id=broker.broker_id)
