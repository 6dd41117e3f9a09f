"""Trader authentication on $connect: the JWT matrix, through the handler, with a real JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.ws_connect.handler import handle_event
from local.tokens import issue_local_token
from shared.adapters.apigw_push import ApiGatewayNotifier
from shared.adapters.auth.jwt_verifier import JwtVerifier
from shared.adapters.redis.connections import RedisConnectionRegistry
from shared.domain.errors import (
    AuthenticationError,
    ForbiddenError,
    IdentityProviderUnavailableError,
)
from shared.services.connections import ConnectionService
from shared.settings import Settings
from tests.integration.websocket.servers import JwksServer
from tests.integration.websocket.support import (
    AUDIENCE,
    ISSUER,
    KID,
    LOCAL_SECRET,
    claims,
    connection_id,
    rs256,
    ws_event,
)

Keys = tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token() -> str:
    """``alg: none`` with an empty signature (the classic bypass)."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims()).encode())}."


def hs256_with_public_key(key: rsa.RSAPrivateKey) -> str:
    """Algorithm confusion: HS256 "signed" with the published RSA public key as the secret.

    PyJWT refuses to produce this, so it is assembled by hand.
    """
    secret = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    payload = _b64(json.dumps(claims()).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


BAD_TOKENS: dict[str, Callable[[Keys], str | None]] = {
    "missing": lambda k: None,
    "garbage": lambda k: "not-a-jwt",
    "expired": lambda k: rs256(k[0], claims(exp=int(time.time()) - 120)),
    "wrong key": lambda k: rs256(k[1], claims()),
    "unknown kid": lambda k: rs256(k[0], claims(), kid="rotated-away"),
    "alg none": lambda k: unsigned_token(),
    "hs256 with the rsa public key": lambda k: hs256_with_public_key(k[0]),
    "hs256 with a wrong secret": lambda k: jwt.encode(
        claims(), "another-secret-that-is-32-bytes-long!!", algorithm="HS256"
    ),
    "wrong issuer": lambda k: rs256(k[0], claims(iss="https://evil.example.com/pool")),
    "wrong audience": lambda k: rs256(k[0], claims(aud="another-app")),
    "no audience": lambda k: rs256(k[0], claims(aud=None)),
    "no subject": lambda k: rs256(k[0], claims(sub=None)),
    "not yet valid": lambda k: rs256(k[0], claims(nbf=int(time.time()) + 600)),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_connect_with_a_bad_token_is_401_and_registers_nothing(
    case: str,
    service: ConnectionService,
    registry: RedisConnectionRegistry,
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
) -> None:
    # GIVEN a token that must not authenticate
    token = BAD_TOKENS[case]((rsa_key, other_rsa_key))
    conn = connection_id()
    # WHEN a client connects with it
    response = handle_event(ws_event("$connect", conn, token=token), service)
    # THEN the connection is refused with 401 and nothing is registered
    assert response == {"statusCode": 401}
    assert registry.get(conn) is None
    assert registry.connections_of("trader-1") == []
    assert registry.count_active() == 0


def test_connect_without_the_trader_group_is_403_and_registers_nothing(
    service: ConnectionService, registry: RedisConnectionRegistry, rsa_key: rsa.RSAPrivateKey
) -> None:
    # GIVEN a valid token of a user who is not a trader
    token = rs256(rsa_key, claims(**{"cognito:groups": ["VIEWER"]}))
    conn = connection_id()
    # WHEN the user connects
    response = handle_event(ws_event("$connect", conn, token=token), service)
    # THEN the connection is forbidden and nothing is registered
    assert response == {"statusCode": 403}
    assert registry.get(conn) is None
    assert registry.count_active() == 0


def test_connect_with_a_valid_cognito_token_registers_the_connection(
    service: ConnectionService,
    registry: RedisConnectionRegistry,
    rsa_key: rsa.RSAPrivateKey,
    jwks_server: JwksServer,
) -> None:
    # GIVEN a Cognito ID token signed by the published key
    token = rs256(rsa_key, claims(sub="trader-42"))
    conn = connection_id()
    # WHEN the trader connects
    response = handle_event(ws_event("$connect", conn, token=token), service)
    # THEN the connection is accepted and registered under the token's subject
    assert response == {"statusCode": 200}
    record = registry.get(conn)
    assert record is not None
    assert record.user_id == "trader-42"
    assert [r.connection_id for r in registry.connections_of("trader-42")] == [conn]
    assert jwks_server.hits == 1


def test_access_token_is_accepted_by_client_id(
    verifier: JwtVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    # GIVEN a Cognito access token: client_id instead of aud
    token = rs256(rsa_key, claims(aud=None, client_id=AUDIENCE, token_use="access"))
    # WHEN it is verified
    identity = verifier.verify(token)
    # THEN the client id stands for the audience
    assert identity.user_id == "trader-1"
    assert identity.groups == ("TRADER",)
    # AND an access token of another app client is refused
    with pytest.raises(AuthenticationError):
        verifier.verify(rs256(rsa_key, claims(aud=None, client_id="other-app")))


def test_jwks_is_fetched_lazily_once_and_reused(
    jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    # GIVEN a verifier just built
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.jwks_url)
    # THEN building it did no I/O
    assert jwks_server.hits == 0
    # WHEN three tokens of two users are verified
    users = [verifier.verify(rs256(rsa_key, claims(sub=f"t{i % 2}"))).user_id for i in range(3)]
    # THEN the key set was fetched once for all of them
    assert users == ["t0", "t1", "t0"]
    assert jwks_server.hits == 1


def test_unreachable_jwks_is_503_not_401(
    notifier: ApiGatewayNotifier, registry: RedisConnectionRegistry, rsa_key: rsa.RSAPrivateKey
) -> None:
    # GIVEN a verifier whose JWKS endpoint refuses connections
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url="http://127.0.0.1:1/jwks.json"
    )
    with pytest.raises(IdentityProviderUnavailableError):
        verifier.verify(rs256(rsa_key, claims()))
    # WHEN a trader connects through a service using it
    broken = ConnectionService(verifier, registry, notifier)
    conn = connection_id()
    response = handle_event(ws_event("$connect", conn, token=rs256(rsa_key, claims())), broken)
    # THEN the client is told to retry (503) and nothing is registered
    assert response == {"statusCode": 503}
    assert registry.get(conn) is None


def test_local_issuer_tokens_round_trip_and_respect_groups() -> None:
    # GIVEN the local issuer and a verifier configured like local mode
    verifier = JwtVerifier(issuer="local", audience="router", local_secret=LOCAL_SECRET)
    now = datetime.now(UTC)
    # WHEN tokens are issued for a trader, a viewer, and one that expired
    trader = issue_local_token(
        LOCAL_SECRET, user_id="u1", issuer="local", audience="router", now=now
    )
    viewer = issue_local_token(
        LOCAL_SECRET, user_id="u2", groups=("VIEWER",), issuer="local", audience="router"
    )
    expired = issue_local_token(
        LOCAL_SECRET,
        user_id="u1",
        issuer="local",
        audience="router",
        ttl_s=60,
        now=now - timedelta(hours=1),
    )
    # THEN the trader verifies, the viewer is forbidden and the expired token is refused
    assert verifier.verify(trader).user_id == "u1"
    with pytest.raises(ForbiddenError):
        verifier.verify(viewer)
    with pytest.raises(AuthenticationError, match="expired"):
        verifier.verify(expired)
    # AND an RS256 token is refused when no JWKS is configured
    with pytest.raises(AuthenticationError, match="not accepted"):
        verifier.verify(rs256(rsa.generate_private_key(65537, 2048), claims()))


def test_misconfiguration_fails_at_construction(ws_settings: Settings) -> None:
    # GIVEN / WHEN / THEN no key source, a short secret, or the dev secret in prod are refused
    with pytest.raises(ValueError, match="configure"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValueError, match="32 bytes"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, local_secret="short")
    with pytest.raises(ValueError, match="local or test"):
        JwtVerifier.from_settings(ws_settings.model_copy(update={"stage": "prod"}))
    with pytest.raises(ValueError, match="32 bytes"):
        issue_local_token("short", user_id="u", issuer=ISSUER, audience=AUDIENCE)


@pytest.mark.parametrize(
    ("groups", "trader"), [(["ADMIN"], False), (["TRADER", "ADMIN"], True), (["TRADER"], True)]
)
def test_admin_tokens_connect_and_only_traders_get_order_updates(
    service: ConnectionService,
    registry: RedisConnectionRegistry,
    rsa_key: rsa.RSAPrivateKey,
    groups: list[str],
    trader: bool,
) -> None:
    # GIVEN a valid token with these groups
    token = rs256(rsa_key, claims(**{"cognito:groups": groups}))
    conn = connection_id()
    # WHEN the user connects
    response = handle_event(ws_event("$connect", conn, token=token), service)
    # THEN the connection is admitted and counted
    assert response == {"statusCode": 200}
    record = registry.get(conn)
    assert record is not None
    assert record.trader is trader
    assert registry.count_active() == 1
    # AND only a trader's connection is among the user's (where order updates are looked up)
    listed = [r.connection_id for r in registry.connections_of(record.user_id)]
    assert listed == ([conn] if trader else [])
