"""Token verification with PyJWT, the way API Gateway's JWT authorizer does it.

What is checked: the signature with a pinned algorithm, ``exp`` (and ``nbf``/``iat`` when
present), ``iss``, the audience, a non-empty ``sub``, and one of the accepted groups (``TRADER``
or ``ADMIN`` by default: a WebSocket admits operators too) in ``cognito:groups``.

Algorithms are pinned per key source, never taken from the token: ``RS256`` with a key from the
Cognito JWKS (``jwks_url``), ``HS256`` with the local dev secret (``local_jwt_secret``, local
mode only). The unverified header only selects which of the configured sources to try, and the
decode call accepts that one algorithm alone, so ``alg: none`` and the RSA-public-key-as-HMAC-
secret confusion are refused before any signature arithmetic.

Audience: Cognito ID tokens carry ``aud`` (the app client id), access tokens carry ``client_id``
and no ``aud``. Like the API Gateway authorizer, a token is accepted when ``aud`` contains the
configured audience or, when it has no ``aud``, when ``client_id`` equals it.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import jwt

from shared.domain.admin import ADMIN_GROUP
from shared.domain.errors import (
    AuthenticationError,
    ForbiddenError,
    IdentityProviderUnavailableError,
)
from shared.domain.identity import GROUPS_CLAIM, TRADER_GROUP, TraderIdentity, parse_groups

if TYPE_CHECKING:
    from shared.settings import Settings

LOCAL_STAGES = frozenset({"local", "test"})
"""The only stages that may trust the local HS256 secret; an unset stage is not one of them."""

MAX_TOKEN_CHARS = 8192
"""Cognito tokens are 1-2 KB; anything far larger is refused before parsing."""


MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""


class JwtVerifier:
    """Verifies trader JWTs; cheap to build (no I/O until the first RS256 token arrives).

    Parameters
    ----------
    issuer
        Expected ``iss``.
    audience
        Expected ``aud`` (ID tokens) or ``client_id`` (access tokens).
    jwks_url
        Cognito JWKS URL; enables ``RS256``.
    local_secret
        Local dev issuer secret (at least 32 bytes); enables ``HS256``.
    accepted_groups
        The caller must belong to one of them.
    leeway_s
        Clock skew tolerated on ``exp``/``nbf``/``iat``.
    jwks_timeout_s
        HTTP timeout of a JWKS fetch; short so a slow IdP cannot hold a Lambda for 30 s.
    jwks_lifespan_s
        How long the fetched key set is reused before it is fetched again.

    Raises
    ------
    ValueError
        When neither key source is configured, or the local secret is too short.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        local_secret: str | None = None,
        accepted_groups: Collection[str] = (TRADER_GROUP, ADMIN_GROUP),
        leeway_s: float = 5.0,
        jwks_timeout_s: float = 3.0,
        jwks_lifespan_s: float = 3600.0,
    ) -> None:
        if not jwks_url and not local_secret:
            raise ValueError("configure jwks_url (Cognito) or local_jwt_secret (local mode)")
        if local_secret is not None and len(local_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"local_jwt_secret must be at least {MIN_SECRET_BYTES} bytes")
        self._issuer = issuer
        self._audience = audience
        self._jwks_url = jwks_url or None
        self._local_secret = local_secret or None
        self._accepted_groups = tuple(accepted_groups)
        self._leeway_s = leeway_s
        self._jwks_timeout_s = jwks_timeout_s
        self._jwks_lifespan_s = jwks_lifespan_s
        self._jwks_client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier:
        """A verifier for this deployment.

        Raises
        ------
        ValueError
            When ``local_jwt_secret`` is set and the stage is not explicitly ``local`` or
            ``test`` (``dev``, ``prod``, or no ``ROUTER_STAGE`` at all): the local issuer must
            never be trusted in AWS, so a leaked local secret cannot mint production tokens,
            and a function deployed without its stage refuses to start rather than trust it.
        """
        secret = settings.local_jwt_secret.get_secret_value() if settings.local_jwt_secret else None
        if secret and settings.stage not in LOCAL_STAGES:
            raise ValueError(
                f"local_jwt_secret is trusted only when ROUTER_STAGE is local or test "
                f"(stage: {settings.stage or 'unset'})"
            )
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks_url=settings.jwks_url,
            local_secret=secret,
        )

    def verify(self, token: str | None) -> TraderIdentity:
        """Verify ``token`` and return the trader it identifies.

        Parameters
        ----------
        token
            The compact JWT (from the ``token`` query parameter), or ``None`` if absent.

        Returns
        -------
        TraderIdentity
            ``sub`` and the caller's groups.

        Raises
        ------
        AuthenticationError
            Missing, malformed, forged, expired or foreign (issuer/audience) token: 401.
        ForbiddenError
            A valid token without the required group: 403.
        IdentityProviderUnavailableError
            The JWKS could not be fetched: 503.
        """
        if not token:
            raise AuthenticationError("missing token")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("malformed token") from exc
        algorithm = header.get("alg")
        key: Any
        if algorithm == "RS256" and self._jwks_url is not None:
            key = self._jwks_key(token)
        elif algorithm == "HS256" and self._local_secret is not None:
            key = self._local_secret
        else:
            raise AuthenticationError(f"token algorithm {algorithm!r} is not accepted")
        claims = self._decode(token, key, algorithm)
        self._check_audience(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("token has no subject")
        groups = parse_groups(claims.get(GROUPS_CLAIM))
        if not set(self._accepted_groups) & set(groups):
            wanted = ", ".join(self._accepted_groups)
            raise ForbiddenError(f"one of the groups {wanted} is required")
        return TraderIdentity(user_id=subject, groups=groups)

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                leeway=self._leeway_s,
                # The audience is checked by hand: access tokens carry client_id, not aud.
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("token expired") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("token issuer not accepted") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token ({exc.__class__.__name__})") from exc

    def _check_audience(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud")
        if audience is not None:
            accepted = [audience] if isinstance(audience, str) else audience
            if not isinstance(accepted, list) or self._audience not in accepted:
                raise AuthenticationError("token audience not accepted")
            return
        if claims.get("client_id") != self._audience:
            raise AuthenticationError("token audience not accepted")

    def _jwks_key(self, token: str) -> Any:
        try:
            return self._jwks().get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise IdentityProviderUnavailableError("the JWKS endpoint cannot be reached") from exc
        except jwt.PyJWTError as exc:
            # An unknown kid, a missing kid or an unusable key set: the token is not ours.
            raise AuthenticationError(
                f"no signing key for token ({exc.__class__.__name__})"
            ) from exc

    def _jwks(self) -> jwt.PyJWKClient:
        # Built on first use (no I/O at import or construction) and kept for the life of the
        # container; PyJWKClient caches the key set for jwks_lifespan_s and refetches once on an
        # unknown kid (key rotation), at most every cooldown period.
        if self._jwks_client is None:
            with self._lock:
                if self._jwks_client is None:
                    assert self._jwks_url is not None
                    self._jwks_client = jwt.PyJWKClient(
                        self._jwks_url,
                        cache_keys=True,
                        lifespan=self._jwks_lifespan_s,
                        timeout=self._jwks_timeout_s,
                    )
        return self._jwks_client
