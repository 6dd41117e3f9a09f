"""Helpers of the websocket tests (importable: tests never import a conftest module)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_TestPool"

LOCAL_ISSUER = "http://127.0.0.1:8080/local-issuer"

AUDIENCE = "order-router-client"

LOCAL_SECRET = "local-dev-secret-with-at-least-32-bytes!"

KID = "test-key-1"


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid Cognito ID token of a trader; ``None`` values remove a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "trader-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "token_use": "id",
        "cognito:groups": ["TRADER"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rs256(key: rsa.RSAPrivateKey, body: dict[str, Any], kid: str = KID) -> str:
    """Sign ``body`` with RS256 under ``kid``."""
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def connection_id() -> str:
    """An id shaped like API Gateway's (base64 with padding)."""
    return f"{uuid.uuid4().hex[:14]}Q="


def ws_event(
    route: str,
    connection: str,
    *,
    token: str | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    """A realistic API Gateway WebSocket event for ``$connect``/``$disconnect``/``$default``."""
    now_ms = int(time.time() * 1000)
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    context: dict[str, Any] = {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": "Qx9T2FvUBcwFz0Q=",
        "requestTime": "24/Nov/2026:10:00:00 +0000",
        "messageDirection": "IN",
        "stage": "prod",
        "connectedAt": now_ms - 1000,
        "requestTimeEpoch": now_ms,
        "identity": {"sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
        "requestId": "Qx9T2FvUBcwFz0Q=",
        "domainName": "abc123.execute-api.ap-south-1.amazonaws.com",
        "connectionId": connection,
        "apiId": "abc123",
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if route == "$connect":
        headers = {
            "Host": "abc123.execute-api.ap-south-1.amazonaws.com",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https",
        }
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        if token is not None:
            event["queryStringParameters"] = {"token": token}
            event["multiValueQueryStringParameters"] = {"token": [token]}
    elif route == "$disconnect":
        event["headers"] = {"Host": "abc123.execute-api.ap-south-1.amazonaws.com"}
        event["multiValueHeaders"] = {"Host": ["abc123.execute-api.ap-south-1.amazonaws.com"]}
        context["disconnectStatusCode"] = 1001
        context["disconnectReason"] = "Going away"
    else:
        context["messageId"] = "Qx9UAd6fBcwCFrg="
        event["body"] = body
    return event
