"""Loopback HTTP servers for the WebSocket tests and benchmark: the management API and a JWKS.

The real boto3 ``apigatewaymanagementapi`` client talks to :class:`FakeManagementApi` over HTTP,
so serialisation, signing, error parsing (``GoneException`` from a 410 with
``x-amzn-ErrorType``) and connection reuse are the production code paths.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote

import boto3
from botocore.config import Config
from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

_CONNECTIONS = "/@connections/"


class _QuietHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: botocore reuses connections as it would with API Gateway.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _ManagementHandler(_QuietHandler):
    def do_POST(self) -> None:
        api: FakeManagementApi = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if _CONNECTIONS not in self.path:
            self._reply(404)
            return
        connection_id = unquote(self.path.split(_CONNECTIONS, 1)[1])
        status, error = api.outcome(connection_id, body)
        if error is None:
            self._reply(status)
            return
        payload = json.dumps({"message": error}).encode()
        self._reply(
            status,
            payload,
            {"Content-Type": "application/json", "x-amzn-ErrorType": error},
        )


class FakeManagementApi(_Server):
    """``POST /@connections/{id}``: records bodies; ``gone`` ids get 410, ``forbidden`` ids 403."""

    def __init__(self, *, record: bool = True, delay_s: float = 0.0) -> None:
        super().__init__(_ManagementHandler)
        self.record = record
        self.delay_s = delay_s
        self.received: dict[str, list[bytes]] = {}
        self.gone: set[str] = set()
        self.forbidden: set[str] = set()
        self.calls = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget everything received and every scripted failure."""
        with self._lock:
            self.received.clear()
            self.gone.clear()
            self.forbidden.clear()
            self.calls = 0

    def outcome(self, connection_id: str, body: bytes) -> tuple[int, str | None]:
        """Status and error code for one post (and record it)."""
        if self.delay_s:
            time.sleep(self.delay_s)  # stands for API Gateway's own latency
        with self._lock:
            self.calls += 1
            if connection_id in self.gone:
                return 410, "GoneException"
            if connection_id in self.forbidden:
                return 403, "ForbiddenException"
            if self.record:
                self.received.setdefault(connection_id, []).append(body)
        return 200, None

    def messages(self, connection_id: str) -> list[dict[str, Any]]:
        """Decoded messages received by one connection, in order."""
        with self._lock:
            return [json.loads(b) for b in self.received.get(connection_id, [])]


def management_client(endpoint_url: str, *, pool: int = 10) -> ApiGatewayManagementApiClient:
    """A real boto3 client for ``endpoint_url`` with dummy credentials (nothing leaves loopback)."""
    return boto3.session.Session().client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name="ap-south-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=pool),
    )


class _JwksHandler(_QuietHandler):
    def do_GET(self) -> None:
        jwks: JwksServer = self.server.owner  # type: ignore[attr-defined]
        with jwks.lock:
            jwks.hits += 1
        self._reply(200, json.dumps(jwks.document).encode(), {"Content-Type": "application/json"})


class JwksServer(_Server):
    """Serves ``document`` as the JWKS at any path; ``hits`` counts fetches."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(_JwksHandler)
        self.document = document
        self.hits = 0
        self.lock = threading.Lock()

    @property
    def jwks_url(self) -> str:
        """The URL of the key set."""
        return f"{self.url}/.well-known/jwks.json"
