"""The local internal server: the WebSocket management API and EventBridge, for this run only.

Two AWS back doors the production code calls through boto3 are served here, apart from the
public API:

* ``POST|GET|DELETE /@connections/{id}``: the WebSocket management API, answered from the live
  sockets of :mod:`local.ws_server` (the notifier's boto3 client points here);
* ``POST /`` with ``X-Amz-Target: AWSEvents.PutEvents``: EventBridge, answered by
  :class:`local.bus.LocalEventBus` (the publisher's boto3 client points here).

Whoever can call them can push a forged message to any trader's socket or forge an execution, so
the server binds 127.0.0.1 on a port of its own and accepts only requests signed with this run's
credentials, the way AWS does: boto3 signs every request with Signature Version 4 using the
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` of the handlers' environment, which the runtime
generates at random for each run (:func:`new_credentials`), and :func:`verify_sigv4` recomputes
the signature with botocore's own signer. Anything else gets 403 in the API's one error shape.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.bus import MAX_ENTRIES, LocalEventBus
from local.ws_server import MAX_MESSAGE_BYTES, LiveConnections
from shared.http import error_body

logger = logging.getLogger("order_router.local.internal")

AMZ_JSON = "application/x-amz-json-1.1"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW_S = 300
"""How far a signature's time may be from now (AWS allows 5 minutes), so a captured request
cannot be replayed later."""


@dataclass(frozen=True)
class InternalCredentials:
    """The access key pair of one run: the handlers sign with it, the internal server checks it."""

    access_key_id: str
    secret_access_key: str


def new_credentials() -> InternalCredentials:
    """A random key pair for this run (never valid in any AWS account: no AWS key has ``LOCAL``)."""
    return InternalCredentials(
        access_key_id="LOCAL" + secrets.token_hex(8).upper(),
        secret_access_key=secrets.token_urlsafe(32),
    )


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: InternalCredentials,
    now: datetime,
) -> str | None:
    """Check a request's Signature Version 4 against ``credentials``.

    Parameters
    ----------
    method, raw_path, query
        The request line as received (the path still percent-encoded, as it was signed).
    headers
        Request headers, lower-case names.
    body
        The raw body (its SHA-256 is part of what was signed).
    credentials
        This run's key pair.
    now
        The current time (UTC).

    Returns
    -------
    str | None
        ``None`` when the signature is valid, otherwise why not.
    """
    try:
        _check_sigv4(
            method=method,
            raw_path=raw_path,
            query=query,
            headers=headers,
            body=body,
            credentials=credentials,
            now=now,
        )
    except _SignatureError as refused:
        return str(refused)
    return None


class _SignatureError(Exception):
    """Why a signature is not accepted."""


def _check_sigv4(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: InternalCredentials,
    now: datetime,
) -> None:
    scheme, _, rest = headers.get("authorization", "").partition(" ")
    if scheme != ALGORITHM:
        raise _SignatureError("the request is not signed with AWS Signature Version 4")
    fields = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    try:
        access_key, date, region, service, terminator = fields["Credential"].split("/")
        signed_headers = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
        amz_date = headers["x-amz-date"]
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError) as exc:
        raise _SignatureError("the signature is malformed") from exc
    if not hmac.compare_digest(access_key, credentials.access_key_id):
        raise _SignatureError("the access key is not this run's")
    if terminator != "aws4_request" or date != amz_date[:8] or "host" not in signed_headers:
        raise _SignatureError("the signature is malformed")
    if abs((now - signed_at).total_seconds()) > MAX_CLOCK_SKEW_S:
        raise _SignatureError("the signature has expired")
    if any(name not in headers for name in signed_headers):
        raise _SignatureError("a signed header is missing")
    url = f"http://{headers['host']}{raw_path}" + (f"?{query}" if query else "")
    request = AWSRequest(
        method=method, url=url, headers={n: headers[n] for n in signed_headers}, data=body
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(
        Credentials(credentials.access_key_id, credentials.secret_access_key), service, region
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature):
        raise _SignatureError("the signature does not match")


def build_internal_app(
    *,
    bus: LocalEventBus,
    connections: LiveConnections,
    credentials: InternalCredentials,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The Starlette app of the internal server.

    Parameters
    ----------
    bus
        Receives ``PutEvents`` calls.
    connections
        The live WebSockets the management API writes to.
    credentials
        This run's key pair: every request must be signed with it.
    clock
        The current time (signature expiry).

    Returns
    -------
    Starlette
        Ready to be served by uvicorn on 127.0.0.1.
    """

    def signed(
        endpoint: Callable[[Request, bytes], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def checked(request: Request) -> Response:
            body = await request.body()
            refused = verify_sigv4(
                method=request.method,
                raw_path=request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
                query=request.url.query,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                credentials=credentials,
                now=clock(),
            )
            if refused is not None:
                logger.warning("refused %s %s: %s", request.method, request.url.path, refused)
                return JSONResponse(error_body("FORBIDDEN", refused), status_code=403)
            return await endpoint(request, body)

        return checked

    async def management(request: Request, body: bytes) -> Response:
        return await _management(request, body, connections)

    async def put_events(request: Request, body: bytes) -> Response:
        return _put_events(request, body, bus)

    async def not_found(request: Request) -> Response:
        return JSONResponse(error_body("NOT_FOUND", "no such internal route"), status_code=404)

    return Starlette(
        routes=[
            Route(
                "/@connections/{connection_id}",
                signed(management),
                methods=["POST", "GET", "DELETE"],
            ),
            Route("/", signed(put_events), methods=["POST"]),
            Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]
    )


# -- the WebSocket management API --------------------------------------------------------------


def _aws_error(status: int, error_type: str, message: str) -> Response:
    # botocore reads the error code from x-amzn-ErrorType (GoneException -> ClientError code).
    return JSONResponse(
        {"message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type}
    )


async def _management(request: Request, body: bytes, connections: LiveConnections) -> Response:
    connection_id = request.path_params["connection_id"]
    if request.method == "POST":
        if len(body) > MAX_MESSAGE_BYTES:
            return _aws_error(413, "PayloadTooLargeException", "Message too long")
        if await connections.send(connection_id, body):
            return Response(status_code=200)
    elif request.method == "DELETE":
        if await connections.close(connection_id):
            return Response(status_code=204)
    else:
        live = connections.get(connection_id)
        if live is not None:
            # The wire names of the GetConnection output (botocore maps them to ConnectedAt...).
            return JSONResponse(
                {
                    "connectedAt": live.connected_at.isoformat(),
                    "identity": {"sourceIp": live.source_ip, "userAgent": live.user_agent},
                    "lastActiveAt": live.last_active_at.isoformat(),
                }
            )
    return _aws_error(410, "GoneException", f"connection {connection_id} is gone")


# -- EventBridge -------------------------------------------------------------------------------


def _put_events(request: Request, body: bytes, bus: LocalEventBus) -> Response:
    target = request.headers.get("x-amz-target", "")
    if target != "AWSEvents.PutEvents":
        return _amz_error(400, "UnknownOperationException", f"{target or 'no target'}")
    try:
        payload = json.loads(body)
        entries = payload["Entries"]
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _amz_error(400, "ValidationException", "Entries must hold 1 to 10 entries")
    # Only queues the entries: delivery runs on the bus's own thread.
    result = bus.put_events(entries)
    return Response(json.dumps(result), media_type=AMZ_JSON)


def _amz_error(status: int, error_type: str, message: str) -> Response:
    return Response(
        json.dumps({"__type": error_type, "message": message}),
        status_code=status,
        media_type=AMZ_JSON,
    )
