"""The local dev issuer: HS256 tokens shaped like Cognito ID tokens, for local mode and the CLI.

Local mode only: it never ships to Lambda, where Cognito issues every token.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import jwt

from shared.adapters.auth.jwt_verifier import MIN_SECRET_BYTES


def issue_local_token(
    secret: str,
    *,
    user_id: str,
    groups: Sequence[str] = ("TRADER",),
    issuer: str,
    audience: str,
    ttl_s: int = 3600,
    now: datetime | None = None,
) -> str:
    """Sign a trader token that :class:`~shared.adapters.auth.JwtVerifier` accepts locally.

    The claims mirror a Cognito ID token (``sub``, ``iss``, ``aud``, ``cognito:groups``,
    ``token_use``), so the verifier checks local and Cognito tokens with the same code.

    Parameters
    ----------
    secret
        The shared HS256 secret (``Settings.local_jwt_secret``), at least 32 bytes.
    user_id
        The trader's id, written to ``sub``.
    groups
        Written to ``cognito:groups``; routes require ``TRADER``.
    issuer, audience
        ``iss`` and ``aud`` (``Settings.jwt_issuer`` / ``Settings.jwt_audience``).
    ttl_s
        Lifetime in seconds.
    now
        Issue time (UTC); the current time when omitted.

    Returns
    -------
    str
        The compact JWS.

    Raises
    ------
    ValueError
        When the secret is shorter than 32 bytes or ``ttl_s`` is not positive.
    """
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the local JWT secret must be at least {MIN_SECRET_BYTES} bytes")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    issued_at = int((now or datetime.now(UTC)).timestamp())
    claims = {
        "sub": user_id,
        "iss": issuer,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "cognito:groups": list(groups),
        "token_use": "id",
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
