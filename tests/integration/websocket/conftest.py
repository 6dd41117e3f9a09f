"""Fixtures of the WebSocket tests: real Redis, a loopback management API, RSA keys and a JWKS."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

from shared.adapters.apigw_push import ApiGatewayNotifier
from shared.adapters.auth.jwt_verifier import JwtVerifier
from shared.adapters.redis.connections import RedisConnectionRegistry
from shared.services.connections import ConnectionService
from shared.settings import Settings
from tests.integration.websocket.servers import FakeManagementApi, JwksServer, management_client
from tests.integration.websocket.support import AUDIENCE, ISSUER, KID, LOCAL_ISSUER, LOCAL_SECRET


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """The identity provider's signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    """A key the identity provider never published (a forger's)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_server(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    """A JWKS on loopback publishing ``rsa_key`` under ``KID``."""
    public = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    server = JwksServer({"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]}).start()
    yield server
    server.stop()


@pytest.fixture
def verifier(jwks_server: JwksServer) -> JwtVerifier:
    """Accepts Cognito RS256 tokens (JWKS) and local HS256 tokens, both with ``ISSUER``."""
    return JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.jwks_url, local_secret=LOCAL_SECRET
    )


@pytest.fixture
def registry(redis_client: redis.Redis, redis_prefix: str) -> RedisConnectionRegistry:
    """The registry on the test's Redis key prefix."""
    return RedisConnectionRegistry(redis_client, prefix=redis_prefix)


@pytest.fixture(scope="session")
def _management_server() -> Iterator[FakeManagementApi]:
    server = FakeManagementApi().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _management_client(
    _management_server: FakeManagementApi,
) -> ApiGatewayManagementApiClient:
    # Building a boto3 client loads the service model (~0.3 s): once per session.
    return management_client(_management_server.url)


@pytest.fixture
def management_api(_management_server: FakeManagementApi) -> FakeManagementApi:
    """The management API on loopback, with nothing received and no gone connection."""
    _management_server.reset()
    return _management_server


@pytest.fixture
def notifier(
    registry: RedisConnectionRegistry,
    management_api: FakeManagementApi,
    _management_client: ApiGatewayManagementApiClient,
) -> ApiGatewayNotifier:
    """The production notifier, pointed at the loopback management API."""
    return ApiGatewayNotifier(
        registry,
        endpoint_url=management_api.url,
        region="ap-south-1",
        client=_management_client,
    )


@pytest.fixture
def service(
    verifier: JwtVerifier, registry: RedisConnectionRegistry, notifier: ApiGatewayNotifier
) -> ConnectionService:
    """The connection service over real Redis, a real JWKS and the loopback management API."""
    return ConnectionService(verifier, registry, notifier)


@pytest.fixture
def ws_settings(redis_url: str, redis_prefix: str, management_api: FakeManagementApi) -> Settings:
    """Settings of local mode for Redis-only tests (Postgres is never contacted)."""
    return Settings(
        stage="test",
        database_url="postgresql://unused@127.0.0.1:1/x",
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        ws_management_endpoint=management_api.url,
        jwt_issuer=LOCAL_ISSUER,
        jwt_audience=AUDIENCE,
        local_jwt_secret=LOCAL_SECRET,
    )
