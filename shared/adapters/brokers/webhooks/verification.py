"""Webhook authentication, one scheme per kind of broker (docs/architecture.md §7).

* Zerodha Kite signs a postback with ``checksum = sha256(order_id + order_timestamp + api_secret)``
  inside the JSON body: :func:`verify_kite_checksum`.
* Our paper broker and generic brokers sign ``timestamp + "." + raw_body`` with HMAC-SHA256 and
  send it in headers, checked against a 5-minute replay window: :func:`sign_webhook`,
  :func:`verify_signed_webhook`.
* Brokers that do not sign (Upstox, Dhan) are given a secret token in the webhook URL:
  :func:`verify_path_token`.

Every comparison uses :func:`hmac.compare_digest` on bytes, every secret argument also takes a
sequence (the current and the previous secret while rotating), and an empty secret fails closed.
Pure functions: the current time comes in as ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.domain.errors import AuthenticationError

TIMESTAMP_HEADER = "X-Router-Timestamp"
"""Unix time in whole seconds at which the sender signed the request."""
SIGNATURE_HEADER = "X-Router-Signature"
"""``v1=<hex HMAC-SHA256>``; several comma-separated entries are allowed (key rotation)."""
SIGNATURE_SCHEME = "v1"
REPLAY_WINDOW = timedelta(minutes=5)
"""How far a signed timestamp may be from ``now``, in either direction."""

_TIMESTAMP_RE = re.compile(r"^\d{1,12}$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def _secrets(secrets: str | Sequence[str]) -> list[bytes]:
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    usable = [secret.encode() for secret in candidates if secret]
    if not usable:
        # A missing secret must never turn into "anything verifies".
        raise AuthenticationError("no webhook secret is configured for this broker")
    return usable


def _matches_any(presented: bytes, expected: Sequence[bytes]) -> bool:
    # No early exit: the time taken does not depend on which secret matched.
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(presented, candidate)
    return matched


# --------------------------------------------------------------------------------------------
# Zerodha Kite


def compute_kite_checksum(order_id: str, order_timestamp: str, api_secret: str) -> str:
    """Kite's postback checksum: SHA-256 hex of ``order_id + order_timestamp + api_secret``.

    Parameters
    ----------
    order_id, order_timestamp
        The payload's fields, exactly as sent (``"2021-05-31 09:18:57"``).
    api_secret
        The Kite Connect app's API secret.

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    return hashlib.sha256(f"{order_id}{order_timestamp}{api_secret}".encode()).hexdigest()


def verify_kite_checksum(payload: Mapping[str, Any], api_secrets: str | Sequence[str]) -> None:
    """Check a Kite postback's ``checksum`` field.

    Parameters
    ----------
    payload
        The decoded postback body.
    api_secrets
        The app's API secret, or several while rotating.

    Raises
    ------
    AuthenticationError
        Missing ``order_id``, ``order_timestamp`` or ``checksum``, or a checksum that matches no
        secret.

    Notes
    -----
    The checksum covers only the order id and its placement time, not the status or the fills,
    and carries no delivery time: it proves the sender knows the secret but not that the rest of
    the body is intact, and a captured postback can be replayed forever. Reports are therefore
    de-duplicated by idempotency key and reconciled against the broker's order book.
    """
    secrets = _secrets(api_secrets)
    order_id = payload.get("order_id")
    order_timestamp = payload.get("order_timestamp")
    checksum = payload.get("checksum")
    if not isinstance(order_id, str) or not order_id:
        raise AuthenticationError("Kite postback without order_id cannot be verified")
    if not isinstance(order_timestamp, str) or not order_timestamp:
        raise AuthenticationError("Kite postback without order_timestamp cannot be verified")
    if not isinstance(checksum, str) or not _HEX_RE.match(checksum):
        raise AuthenticationError("Kite postback without a SHA-256 checksum")
    expected = [
        compute_kite_checksum(order_id, order_timestamp, secret.decode()).encode()
        for secret in secrets
    ]
    if not _matches_any(checksum.lower().encode(), expected):
        raise AuthenticationError("Kite postback checksum does not match")


# --------------------------------------------------------------------------------------------
# HMAC-signed webhooks (paper and generic brokers)


def compute_signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """HMAC-SHA256 hex of ``f"{timestamp}." + raw_body`` under ``secret``.

    Parameters
    ----------
    secret
        The broker's webhook secret.
    timestamp
        Unix seconds, as sent in :data:`TIMESTAMP_HEADER`.
    raw_body
        The exact bytes of the HTTP body.

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    message = str(timestamp).encode() + b"." + raw_body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_webhook(raw_body: bytes, secret: str, *, timestamp: int) -> dict[str, str]:
    """The headers a sender (the paper broker, a test) attaches to a webhook.

    Parameters
    ----------
    raw_body
        The exact bytes that will be sent.
    secret
        The broker's webhook secret.
    timestamp
        Unix seconds of signing (the caller reads its clock; this function does not).

    Returns
    -------
    dict[str, str]
        ``{TIMESTAMP_HEADER: "<seconds>", SIGNATURE_HEADER: "v1=<hex>"}``.
    """
    if not secret:
        raise ValueError("cannot sign with an empty secret")
    signature = compute_signature(secret, timestamp, raw_body)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SIGNATURE_SCHEME}={signature}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # HTTP header names are case-insensitive; API Gateway v2 lower-cases them.
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_signed_webhook(
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: str | Sequence[str],
    *,
    now: datetime,
    replay_window: timedelta = REPLAY_WINDOW,
) -> int:
    """Check the HMAC signature and the freshness of a signed webhook.

    Parameters
    ----------
    headers
        Request headers (any case).
    raw_body
        The exact bytes received, before any JSON decoding.
    secrets
        The broker's webhook secret, or several while rotating.
    now
        Current time (tz-aware).
    replay_window
        Largest allowed distance between the signed timestamp and ``now``, past or future.

    Returns
    -------
    int
        The verified timestamp (Unix seconds).

    Raises
    ------
    AuthenticationError
        Missing or malformed headers, a timestamp outside the window, or no matching signature.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    expected_secrets = _secrets(secrets)
    raw_timestamp = _header(headers, TIMESTAMP_HEADER)
    raw_signature = _header(headers, SIGNATURE_HEADER)
    if raw_timestamp is None or raw_signature is None:
        raise AuthenticationError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    raw_timestamp = raw_timestamp.strip()
    if not _TIMESTAMP_RE.match(raw_timestamp):
        raise AuthenticationError(f"{TIMESTAMP_HEADER} must be Unix seconds")
    timestamp = int(raw_timestamp)
    skew = abs(now.timestamp() - timestamp)
    if skew > replay_window.total_seconds():
        raise AuthenticationError(
            f"{TIMESTAMP_HEADER} is {skew:.0f} s from now, outside the "
            f"{replay_window.total_seconds():.0f} s replay window"
        )
    presented = [
        value.strip().lower().encode()
        for scheme, _, value in (part.strip().partition("=") for part in raw_signature.split(","))
        if scheme == SIGNATURE_SCHEME and _HEX_RE.match(value.strip())
    ]
    if not presented:
        raise AuthenticationError(f"{SIGNATURE_HEADER} carries no {SIGNATURE_SCHEME} signature")
    expected = [
        compute_signature(secret.decode(), timestamp, raw_body).encode()
        for secret in expected_secrets
    ]
    matched = False
    for signature in presented:
        matched |= _matches_any(signature, expected)
    if not matched:
        raise AuthenticationError("webhook signature does not match")
    return timestamp


# --------------------------------------------------------------------------------------------
# Unsigned brokers (Upstox, Dhan)


def verify_path_token(presented: str | None, expected: str | Sequence[str]) -> None:
    """Check the secret token a broker's webhook URL carries, in constant time.

    Parameters
    ----------
    presented
        The token from the request path (``/webhooks/upstox/{token}``).
    expected
        The configured token, or several while rotating. Use at least 32 random bytes
        (``secrets.token_urlsafe(32)``): the token is the only credential.

    Raises
    ------
    AuthenticationError
        No token presented, none configured, or no match.
    """
    tokens = _secrets(expected)
    if not presented:
        raise AuthenticationError("webhook path token is missing")
    # Hash both sides first so compare_digest sees equal lengths and the token's length leaks
    # nothing either.
    digest = hashlib.sha256(presented.encode()).digest()
    if not _matches_any(digest, [hashlib.sha256(token).digest() for token in tokens]):
        raise AuthenticationError("webhook path token does not match")
