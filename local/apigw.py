"""API Gateway events and the Lambda context, shaped the way AWS delivers them.

The local HTTP server turns each request into one of these for the same handlers that run in
Lambda; the handler tests use them too, so both exercise exactly what AWS would send.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

INVOCATION_TIMING: ContextVar[tuple[float, float] | None] = ContextVar(
    "invocation_timing", default=None
)
"""Seconds the last invocation of this context waited for its container, and ran its handler.

Set by the local runtime's invoker, read by the local HTTP server for its ``Server-Timing``
header (``make load`` splits each request's time into front door, queue and handler with it).
"""


def http_api_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    claims: Mapping[str, Any] | None = None,
    route_key: str = "$default",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) proxy event.

    Parameters
    ----------
    method, path
        Request line.
    body
        Raw body; bytes that are not UTF-8 are base64-encoded as API Gateway does.
    headers
        Request headers (lower-cased, as API Gateway delivers them).
    query
        Query string parameters.
    claims
        The JWT authorizer's verified claims, or ``None`` for a route without an authorizer.
    route_key
        The matched route (``$default`` for a catch-all integration).
    source_ip
        Caller address.
    """
    now = time.time()
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    encoded, is_base64 = _encode_body(body)
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "localhost",
        "domainPrefix": "localhost",
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": lowered.get("user-agent", "local"),
        },
        "requestId": uuid.uuid4().hex,
        "routeKey": route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        # The HTTP API JWT authorizer hands claims to Lambda as strings; lists become "[a b]".
        request_context["authorizer"] = {
            "jwt": {"claims": {k: _claim(v) for k, v in claims.items()}, "scopes": None}
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": lowered,
        "requestContext": request_context,
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if encoded is not None:
        event["body"] = encoded
    return event


def _claim(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)


def _encode_body(body: bytes | str | None) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    if isinstance(body, str):
        return body, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def websocket_event(
    route_key: str,
    connection_id: str,
    *,
    connected_at_ms: int,
    body: str | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    domain_name: str = "localhost",
    disconnect_status_code: int | None = None,
) -> dict[str, Any]:
    """A WebSocket API event for ``$connect``, ``$disconnect`` or ``$default``.

    Parameters
    ----------
    route_key
        ``$connect``, ``$disconnect`` or ``$default`` (any other key is a ``MESSAGE`` too).
    connection_id
        API Gateway's connection id (what the management API is called with).
    connected_at_ms
        When the connection was opened (epoch milliseconds), as ``requestContext.connectedAt``.
    body
        The client's message (``$default``).
    query
        Query string parameters of the handshake (``$connect`` only, like API Gateway).
    headers
        Handshake headers (``$connect`` and ``$disconnect``).
    source_ip
        Caller address.
    domain_name
        ``requestContext.domainName``.
    disconnect_status_code
        The close code on ``$disconnect``.

    Returns
    -------
    dict
        The event as API Gateway's WebSocket API hands it to Lambda.
    """
    now = time.time()
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    request_context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "messageDirection": "IN",
        "stage": "local",
        "connectedAt": connected_at_ms,
        "requestTimeEpoch": int(now * 1000),
        "identity": {
            "sourceIp": source_ip,
            "userAgent": (headers or {}).get("user-agent", "local"),
        },
        "requestId": uuid.uuid4().hex[:16],
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": "local",
    }
    event: dict[str, Any] = {"requestContext": request_context, "isBase64Encoded": False}
    if event_type == "MESSAGE":
        request_context["messageId"] = uuid.uuid4().hex[:16]
        event["body"] = body if body is not None else ""
        return event
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    event["headers"] = lowered
    event["multiValueHeaders"] = {k: [v] for k, v in lowered.items()}
    if event_type == "CONNECT" and query:
        event["queryStringParameters"] = dict(query)
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    if event_type == "DISCONNECT":
        request_context["disconnectStatusCode"] = disconnect_status_code or 1005
        request_context["disconnectReason"] = ""
    return event


@dataclass
class LocalLambdaContext:
    """The Lambda context attributes Powertools reads."""

    function_name: str
    timeout_s: float = 30.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        """The function's ARN in the fake local account."""
        return f"arn:aws:lambda:ap-south-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))
