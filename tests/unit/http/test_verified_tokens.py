"""The front door's cache of verified tokens: reused until ``exp``, refusals never cached."""

from __future__ import annotations

import secrets
from typing import Any

import jwt
import pytest

from local.http_server import VERIFIED_TOKEN_TTL_S, VerifiedTokens, authorize
from shared.adapters.auth.jwt_verifier import JwtVerifier
from shared.domain.errors import AuthenticationError, ForbiddenError

ISSUER = "urn:test-issuer"
AUDIENCE = "order-router"
SECRET = secrets.token_hex(32)
NOW = 1_800_000_000.0


class CountingVerifier:
    """The real verifier, counting its calls."""

    def __init__(self) -> None:
        self.inner = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, local_secret=SECRET)
        self.calls = 0

    def verify(self, token: str | None) -> Any:
        self.calls += 1
        return self.inner.verify(token)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def token(*, exp: float, groups: list[str] | None = None, sub: str = "t-1") -> str:
    claims = {
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(exp),
        "iat": int(NOW) - 10,
        "cognito:groups": ["TRADER"] if groups is None else groups,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> CountingVerifier:
    # PyJWT checks exp against the real clock: pin it to the test's.
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime)
    return CountingVerifier()


class _FrozenDatetime:
    """``datetime`` as PyJWT reads it (``now(tz=...)``), at the test clock's time."""

    current = NOW

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        import datetime as real

        return real.datetime.fromtimestamp(cls.current, tz=tz)


def test_a_verified_token_is_reused_without_verifying_again(verifier: CountingVerifier) -> None:
    # GIVEN a valid trader token verified once
    clock = Clock()
    tokens = VerifiedTokens(verifier, clock=clock)
    good = token(exp=NOW + 3600)
    first = tokens.claims(good)
    # WHEN it comes again a minute later
    clock.now += 60
    again = tokens.claims(good)
    # THEN the same claims answer and the verifier ran once
    assert again == first
    assert first["sub"] == "t-1"
    assert verifier.calls == 1


def test_a_cached_token_past_its_exp_is_verified_again_and_refused(
    verifier: CountingVerifier,
) -> None:
    # GIVEN a token cached while valid
    clock = Clock()
    tokens = VerifiedTokens(verifier, clock=clock)
    short = token(exp=NOW + 30)
    tokens.claims(short)
    # WHEN it is used after its exp and the verifier's leeway
    clock.now = _FrozenDatetime.current = NOW + 60
    try:
        # THEN the verifier sees it again and refuses it (401 at the front door)
        with pytest.raises(AuthenticationError, match="expired"):
            tokens.claims(short)
        assert verifier.calls == 2
        answer = authorize(f"Bearer {short}", tokens)
        assert not isinstance(answer, dict)
        assert answer.status_code == 401
    finally:
        _FrozenDatetime.current = NOW


def test_a_long_lived_token_is_verified_again_after_the_ttl(verifier: CountingVerifier) -> None:
    # GIVEN a token valid for a day, cached
    clock = Clock()
    tokens = VerifiedTokens(verifier, clock=clock)
    day = token(exp=NOW + 86_400)
    tokens.claims(day)
    # WHEN the cache's TTL has passed THEN it is verified again
    clock.now += VERIFIED_TOKEN_TTL_S + 1
    tokens.claims(day)
    assert verifier.calls == 2


def test_refusals_are_never_cached(verifier: CountingVerifier) -> None:
    # GIVEN a forged token and a token in neither TRADER nor ADMIN (the verifier admits both:
    # an ADMIN-only operator may open a WebSocket, docs/websocket.md)
    tokens = VerifiedTokens(verifier, clock=Clock())
    forged = token(exp=NOW + 3600)[:-4] + "AAAA"
    other = token(exp=NOW + 3600, groups=["VIEWER"])
    # WHEN each is presented twice THEN each is refused each time by the verifier itself
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            tokens.claims(forged)
        with pytest.raises(ForbiddenError):
            tokens.claims(other)
    assert verifier.calls == 4
    # AND the front door still lets the group-less token through to the function (its 403)
    claims = authorize(f"Bearer {other}", tokens)
    assert isinstance(claims, dict)
    assert claims["cognito:groups"] == ["VIEWER"]
