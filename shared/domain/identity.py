"""Trader identity from verified claims: pure, so every handler and service may use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.errors import AuthenticationError, ForbiddenError

TRADER_GROUP = "TRADER"
GROUPS_CLAIM = "cognito:groups"


@dataclass(frozen=True, slots=True)
class TraderIdentity:
    """A verified caller: ``user_id`` is the token's ``sub``."""

    user_id: str
    groups: tuple[str, ...]


def parse_groups(raw: Any) -> tuple[str, ...]:
    """Groups of a ``cognito:groups`` claim in any of the shapes it arrives in.

    A JWT carries a list; API Gateway's HTTP API authorizer hands claims to Lambda as strings
    and renders a list as ``"[TRADER admin]"``; some issuers send one group as a plain string.
    """
    if isinstance(raw, list | tuple):
        return tuple(g for g in raw if isinstance(g, str))
    if isinstance(raw, str):
        return tuple(g for g in raw.strip().strip("[]").replace(",", " ").split() if g)
    return ()


def trader_from_claims(claims: Mapping[str, Any] | None) -> TraderIdentity:
    """The verified trader of a request.

    Raises
    ------
    AuthenticationError
        No claims or no subject: the request did not pass through the authorizer (401).
    ForbiddenError
        A verified caller outside the TRADER group (403).
    """
    if not claims or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise AuthenticationError("missing or invalid bearer token")
    groups = parse_groups(claims.get(GROUPS_CLAIM))
    if TRADER_GROUP not in groups:
        raise ForbiddenError("the TRADER role is required")
    return TraderIdentity(user_id=claims["sub"], groups=groups)
