"""The HTTP transport of the broker clients: urllib3, already in the Lambda layer via botocore.

Why not each broker's official client: ``docs/brokers.md`` (import time, layer size, and
clients that swallow timeouts or retry placements). Why urllib3 and not httpx: httpx is a
development dependency only, while urllib3 ships with botocore, so the thin clients add nothing
to the layer. One :class:`urllib3.PoolManager` per broker keeps connections warm across
invocations of a Lambda container.

Nothing here retries: a repeated placement could place the same order twice, so a failure is
classified and handed back (see :class:`~shared.domain.broker_orders.BrokerErrorKind`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from shared.domain.broker_orders import BrokerCallError, BrokerErrorKind


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A broker's HTTP answer: its status and its decoded JSON body (``None`` if not JSON)."""

    status: int
    body: Any
    raw: bytes


class BrokerHttp:
    """Sends one request to one broker and classifies transport failures.

    Parameters
    ----------
    base_url
        The broker's API root (``https://api.kite.trade``), or a local simulator's in local
        mode and tests.
    max_connections
        Connections kept per host (parallel placements of one order).
    """

    def __init__(self, base_url: str, *, max_connections: int = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool = urllib3.PoolManager(maxsize=max_connections, retries=False)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        query: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        base_url: str | None = None,
    ) -> HttpAnswer:
        """Send one request; never retry.

        Raises
        ------
        BrokerCallError
            ``TIMEOUT`` when no answer came within ``timeout_s`` (the request may have been
            processed), ``UNREACHABLE`` when no connection could be made (it was not sent),
            ``NETWORK`` when the connection broke mid-way (unknown outcome).
        """
        url = (base_url or self.base_url).rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        body: bytes | None = None
        send_headers = dict(headers)
        if form is not None:
            body = urlencode(form).encode()
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            send_headers["Content-Type"] = "application/json"
        try:
            response = self._pool.request(
                method,
                url,
                body=body,
                headers=send_headers,
                timeout=urllib3.Timeout(total=timeout_s),
                retries=False,
                redirect=False,
            )
        except (NewConnectionError, ConnectTimeoutError) as exc:
            # Checked before ReadTimeoutError's base: no connection means nothing was sent.
            raise BrokerCallError(
                BrokerErrorKind.UNREACHABLE, f"could not connect to the broker: {exc}"
            ) from exc
        except (ReadTimeoutError, Urllib3TimeoutError, TimeoutError) as exc:
            raise BrokerCallError(
                BrokerErrorKind.TIMEOUT, f"no answer within {timeout_s * 1000:.0f} ms"
            ) from exc
        except (ProtocolError, HTTPError) as exc:
            raise BrokerCallError(
                BrokerErrorKind.NETWORK, f"connection to the broker failed: {exc}"
            ) from exc
        raw = response.data
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = None
        return HttpAnswer(status=response.status, body=decoded, raw=raw)


def unreadable(answer: HttpAnswer, what: str) -> BrokerCallError:
    """The error of a success answer we cannot read (outcome unknown: the broker acted)."""
    snippet = answer.raw[:200].decode("utf-8", "replace")
    return BrokerCallError(
        BrokerErrorKind.SERVER,
        f"unreadable {what} answer (HTTP {answer.status}): {snippet}",
        http_status=answer.status,
    )


def call_error(
    answer: HttpAnswer,
    *,
    code: object,
    message: object,
    classify: Callable[[int, str | None], BrokerErrorKind | None],
) -> BrokerCallError:
    """The error of a call a broker refused.

    429 is always rate limiting; then the broker's own rule (``classify(status, code)``, its
    error-code table); then the HTTP status alone.
    """
    broker_code = code if isinstance(code, str) else None
    kind = (
        BrokerErrorKind.RATE_LIMITED
        if answer.status == 429
        else classify(answer.status, broker_code) or by_http_status(answer.status)
    )
    return BrokerCallError(
        kind,
        str(message or f"HTTP {answer.status}"),
        broker_code=broker_code,
        http_status=answer.status,
    )


def by_http_status(status: int) -> BrokerErrorKind:
    """The family of an error answer whose body names none (a proxy's page, say)."""
    if status == 429:
        return BrokerErrorKind.RATE_LIMITED
    if status == 401:
        return BrokerErrorKind.TOKEN
    if status == 403:
        return BrokerErrorKind.PERMISSION
    if status == 404:
        return BrokerErrorKind.NOT_FOUND
    if 400 <= status < 500:
        return BrokerErrorKind.INPUT
    return BrokerErrorKind.SERVER
