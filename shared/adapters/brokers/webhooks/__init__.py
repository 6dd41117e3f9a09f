"""Broker webhooks: verification (per broker scheme) and normalisation to ``ExecutionReport``.

Pure functions (hashlib, hmac, json): the handler reads the raw body and headers, looks up the
broker's configuration and secret, then calls ``verify_*`` on the raw bytes, ``parse_json_body``
and the broker's normaliser. ``NORMALISERS`` maps ``brokers.adapter`` to its normaliser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared.adapters.brokers.webhooks._parsing import IST, parse_json_body
from shared.adapters.brokers.webhooks.dhan import normalise_dhan
from shared.adapters.brokers.webhooks.generic import normalise_generic
from shared.adapters.brokers.webhooks.kite import normalise_kite
from shared.adapters.brokers.webhooks.upstox import normalise_upstox
from shared.adapters.brokers.webhooks.verification import (
    REPLAY_WINDOW,
    SIGNATURE_HEADER,
    SIGNATURE_SCHEME,
    TIMESTAMP_HEADER,
    compute_kite_checksum,
    compute_signature,
    sign_webhook,
    verify_kite_checksum,
    verify_path_token,
    verify_signed_webhook,
)
from shared.domain.errors import (
    ImpossibleReportError,
    MalformedPayloadError,
    UnsupportedPayloadError,
)
from shared.domain.execution import ExecutionReport


class Normaliser(Protocol):
    """A broker format's normaliser."""

    def __call__(self, payload: Mapping[str, Any], *, broker_id: str) -> ExecutionReport:
        """Turn a decoded webhook body into a report."""
        ...


NORMALISERS: Mapping[str, Normaliser] = {
    "kite": normalise_kite,
    "upstox": normalise_upstox,
    "dhan": normalise_dhan,
    "generic": normalise_generic,
    "paper": normalise_generic,
}
"""``brokers.adapter`` -> normaliser. Dhan's symbol map is not passed here: call
``normalise_dhan`` directly to supply one."""

__all__ = [
    "IST",
    "NORMALISERS",
    "REPLAY_WINDOW",
    "SIGNATURE_HEADER",
    "SIGNATURE_SCHEME",
    "TIMESTAMP_HEADER",
    "ImpossibleReportError",
    "MalformedPayloadError",
    "Normaliser",
    "UnsupportedPayloadError",
    "compute_kite_checksum",
    "compute_signature",
    "normalise_dhan",
    "normalise_generic",
    "normalise_kite",
    "normalise_upstox",
    "parse_json_body",
    "sign_webhook",
    "verify_kite_checksum",
    "verify_path_token",
    "verify_signed_webhook",
]
