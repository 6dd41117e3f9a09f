"""Trader identity: JWT verification (Cognito JWKS in AWS, a local HS256 issuer in local mode)."""

from shared.adapters.auth.jwt_verifier import (
    TRADER_GROUP,
    IdentityProviderUnavailableError,
    JwtVerifier,
    TraderIdentity,
)
from shared.adapters.auth.local_issuer import issue_local_token

__all__ = [
    "TRADER_GROUP",
    "IdentityProviderUnavailableError",
    "JwtVerifier",
    "TraderIdentity",
    "issue_local_token",
]
