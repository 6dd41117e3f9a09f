"""The stage fails closed: without an explicit local or test stage, the local secret is refused."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.adapters.auth.jwt_verifier import JwtVerifier
from shared.domain.errors import AuthenticationError
from shared.settings import ENV_PREFIX, Settings

SECRET = "a-local-secret-that-is-at-least-32-bytes"
ISSUER = "http://127.0.0.1:8080/local-issuer"
AUDIENCE = "order-router"
JWKS_URL = "https://cognito-idp.ap-south-1.amazonaws.com/pool/.well-known/jwks.json"


def _local_token() -> str:
    """A trader token signed with the local secret, as the local issuer signs it."""
    now = int(time.time())
    claims = {
        "sub": "trader-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "cognito:groups": ["TRADER"],
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture
def no_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process whose environment names no stage (a function deployed without ROUTER_STAGE)."""
    monkeypatch.delenv(f"{ENV_PREFIX}STAGE", raising=False)


def _settings(**values: object) -> Settings:
    return Settings(
        database_url="postgresql://unused@127.0.0.1:1/x",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        **values,  # type: ignore[arg-type]
    )


@pytest.mark.usefixtures("no_stage")
def test_a_missing_stage_is_unknown_not_local() -> None:
    # GIVEN no ROUTER_STAGE WHEN settings are read THEN the stage is unset, not "local"
    assert _settings().stage is None


@pytest.mark.usefixtures("no_stage")
def test_without_a_stage_the_local_secret_is_refused() -> None:
    # GIVEN settings with the local secret and no stage (with and without Cognito configured)
    for extra in ({}, {"jwks_url": JWKS_URL}):
        settings = _settings(local_jwt_secret=SECRET, **extra)
        # WHEN a verifier is built from them THEN it refuses to start, naming the unset stage
        with pytest.raises(ValueError, match=r"local or test \(stage: unset\)"):
            JwtVerifier.from_settings(settings)


@pytest.mark.usefixtures("no_stage")
def test_without_a_stage_a_locally_signed_token_is_refused() -> None:
    # GIVEN a deployment without a stage whose verifier trusts Cognito only
    verifier = JwtVerifier.from_settings(_settings(jwks_url=JWKS_URL))
    # WHEN a token signed with the local secret arrives THEN it is refused before any lookup
    with pytest.raises(AuthenticationError, match="'HS256' is not accepted"):
        verifier.verify(_local_token())


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_aws_stages_refuse_the_local_secret(stage: str) -> None:
    # GIVEN a deployed stage with the local secret WHEN the verifier is built THEN it refuses
    with pytest.raises(ValueError, match=f"stage: {stage}"):
        JwtVerifier.from_settings(_settings(stage=stage, local_jwt_secret=SECRET))


@pytest.mark.parametrize("stage", ["local", "test"])
def test_local_and_test_stages_trust_the_local_secret(stage: str) -> None:
    # GIVEN an explicit local or test stage WHEN a locally signed token is verified THEN it passes
    verifier = JwtVerifier.from_settings(_settings(stage=stage, local_jwt_secret=SECRET))
    assert verifier.verify(_local_token()).user_id == "trader-1"


def test_the_stage_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN ROUTER_STAGE=prod in the environment WHEN settings are read THEN the stage is prod
    monkeypatch.setenv(f"{ENV_PREFIX}STAGE", "prod")
    assert _settings().stage == "prod"
