"""The brokers' login APIs (:class:`shared.ports.BrokerSessions`): how a trader's account is linked.

* **Kite Connect v3** (https://kite.trade/docs/connect/v3/user/): the trader logs in at
  ``https://kite.zerodha.com/connect/login?v=3&api_key=...`` (our ``state`` travels in
  ``redirect_params``) and comes back with a ``request_token``; ``POST /session/token``
  (form-encoded, ``X-Kite-Version: 3``) with ``api_key``, ``request_token`` and
  ``checksum`` = SHA-256 hex of ``api_key + request_token + api_secret`` answers the
  ``access_token`` and ``user_id``. The token expires at 06:00 IST the next morning.
* **Upstox v2** (https://upstox.com/developer/api-documentation/authentication): the trader
  authorises at ``/v2/login/authorization/dialog?response_type=code&client_id&redirect_uri&state``
  and comes back with a ``code``; ``POST /v2/login/authorization/token`` (form-encoded) with
  ``code``, ``client_id``, ``client_secret``, ``redirect_uri`` and
  ``grant_type=authorization_code`` answers ``access_token`` and ``user_id``. The token expires
  at 03:30 IST the next day.
* **Dhan v2** (https://dhanhq.co/docs/v2/authentication/): the trader generates an access token
  on Dhan's web and gives it to us; ``GET /v2/profile`` with the ``access-token`` header checks
  it and answers ``dhanClientId`` and ``tokenValidity`` (``dd/MM/yyyy HH:mm``, IST).

App credentials (API key and secret, client id and secret, redirect URI) come from the secret
store under ``adapter_config.app_ref``; nothing secret is logged or echoed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from shared.adapters.brokers import dhan, kite, upstox
from shared.adapters.brokers._http import BrokerHttp, HttpAnswer, unreadable
from shared.adapters.brokers.catalog import RealBrokerSettings, real_settings
from shared.domain.broker_links import (
    IST,
    KITE_EXPIRY,
    UPSTOX_EXPIRY,
    kite_checksum,
    next_ist,
)
from shared.domain.broker_orders import BrokerCallError, BrokerErrorKind
from shared.domain.brokers import BrokerConfig
from shared.domain.errors import DataUnavailableError
from shared.ports import LinkedSession, SecretStore

KITE_LOGIN_URL = "https://kite.zerodha.com/connect/login"
UPSTOX_LOGIN_URL = "https://api.upstox.com/v2/login/authorization/dialog"
SESSION_TIMEOUT_S = 5.0
DHAN_VALIDITY_FORMAT = "%d/%m/%Y %H:%M"


def _fail(message: str) -> BrokerCallError:
    return BrokerCallError(BrokerErrorKind.INPUT, message)


class HttpBrokerSessions:
    """:class:`shared.ports.BrokerSessions` over the brokers' REST login APIs.

    Parameters
    ----------
    secrets
        Where the apps' credentials are (``adapter_config.app_ref``).
    timeout_s
        Per call.
    """

    def __init__(self, secrets: SecretStore, *, timeout_s: float = SESSION_TIMEOUT_S) -> None:
        self._secrets = secrets
        self._timeout_s = timeout_s
        self._http: dict[str, BrokerHttp] = {}

    # -- the port ----------------------------------------------------------------------------

    def login_url(self, broker: BrokerConfig, state: str) -> str:
        """The broker's login page, carrying ``state`` back to us."""
        settings = self._settings(broker)
        app = self._app(settings)
        if broker.adapter == "kite":
            query = {
                "v": kite.API_VERSION,
                "api_key": app.get("api_key", ""),
                "redirect_params": urlencode({"state": state}),
            }
            return f"{settings.login_url or KITE_LOGIN_URL}?{urlencode(query)}"
        query = {
            "response_type": "code",
            "client_id": app.get("client_id", ""),
            "redirect_uri": app.get("redirect_uri", ""),
            "state": state,
        }
        return f"{settings.login_url or UPSTOX_LOGIN_URL}?{urlencode(query)}"

    def exchange(
        self, broker: BrokerConfig, params: Mapping[str, str], *, now: datetime
    ) -> LinkedSession:
        """Kite's ``POST /session/token`` or Upstox's ``POST /v2/login/authorization/token``."""
        settings = self._settings(broker)
        app = self._app(settings)
        if broker.adapter == "kite":
            return self._kite(settings, app, params.get("request_token") or "", now)
        return self._upstox(settings, app, params.get("code") or "", now)

    def adopt(self, broker: BrokerConfig, access_token: str, *, now: datetime) -> LinkedSession:
        """Dhan's ``GET /v2/profile`` under the trader's token."""
        settings = self._settings(broker)
        answer = self._client(settings.base_url or dhan.BASE_URL).request(
            "GET",
            "/profile",
            headers={"access-token": access_token, "Accept": "application/json"},
            timeout_s=self._timeout_s,
        )
        if answer.status >= 400:
            raise dhan._error(answer)
        body: Mapping[str, Any] = answer.body if isinstance(answer.body, Mapping) else {}
        client_id = body.get("dhanClientId")
        if not client_id:
            raise unreadable(answer, "Dhan profile")
        return LinkedSession(
            account_id=str(client_id),
            credentials={"client_id": str(client_id), "access_token": access_token},
            expires_at=_dhan_validity(body, now),
        )

    # -- the brokers -------------------------------------------------------------------------

    def _kite(
        self, settings: RealBrokerSettings, app: Mapping[str, str], token: str, now: datetime
    ) -> LinkedSession:
        if not token:
            raise _fail("the redirect carries no request_token")
        api_key, api_secret = app.get("api_key", ""), app.get("api_secret", "")
        answer = self._client(settings.base_url or kite.BASE_URL).request(
            "POST",
            "/session/token",
            headers={"X-Kite-Version": kite.API_VERSION},
            form={
                "api_key": api_key,
                "request_token": token,
                "checksum": kite_checksum(api_key, token, api_secret),
            },
            timeout_s=self._timeout_s,
        )
        data = _kite_data(answer)
        return LinkedSession(
            account_id=str(data["user_id"]),
            credentials={"api_key": api_key, "access_token": str(data["access_token"])},
            expires_at=next_ist(now, KITE_EXPIRY),
        )

    def _upstox(
        self, settings: RealBrokerSettings, app: Mapping[str, str], code: str, now: datetime
    ) -> LinkedSession:
        if not code:
            raise _fail("the redirect carries no code")
        answer = self._client(settings.base_url or upstox.BASE_URL).request(
            "POST",
            "/v2/login/authorization/token",
            headers={"Accept": "application/json"},
            form={
                "code": code,
                "client_id": app.get("client_id", ""),
                "client_secret": app.get("client_secret", ""),
                "redirect_uri": app.get("redirect_uri", ""),
                "grant_type": "authorization_code",
            },
            timeout_s=self._timeout_s,
        )
        if answer.status >= 400:
            raise upstox._error(answer)
        body: Mapping[str, Any] = answer.body if isinstance(answer.body, Mapping) else {}
        # The token answer is the object itself; some gateways wrap it in "data".
        wrapped = body.get("data")
        data: Mapping[str, Any] = wrapped if isinstance(wrapped, Mapping) else body
        if not data.get("access_token") or not data.get("user_id"):
            raise unreadable(answer, "Upstox token")
        return LinkedSession(
            account_id=str(data["user_id"]),
            credentials={"access_token": str(data["access_token"])},
            expires_at=next_ist(now, UPSTOX_EXPIRY),
        )

    # -- internals ---------------------------------------------------------------------------

    def _client(self, base_url: str) -> BrokerHttp:
        client = self._http.get(base_url)
        if client is None:
            client = self._http[base_url] = BrokerHttp(base_url)
        return client

    @staticmethod
    def _settings(broker: BrokerConfig) -> RealBrokerSettings:
        settings = real_settings(broker)
        if isinstance(settings, str):
            raise BrokerCallError(BrokerErrorKind.UNREACHABLE, settings)
        return settings

    def _app(self, settings: RealBrokerSettings) -> dict[str, str]:
        if not settings.app_ref:
            raise BrokerCallError(BrokerErrorKind.UNREACHABLE, "no app credentials configured")
        try:
            values = self._secrets.get(settings.app_ref)
        except DataUnavailableError as exc:
            raise BrokerCallError(
                BrokerErrorKind.UNREACHABLE, "app credentials store unavailable"
            ) from exc
        try:
            document = json.loads(values[0]) if values else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise BrokerCallError(BrokerErrorKind.UNREACHABLE, "app credentials are not usable")
        return {str(k): str(v) for k, v in document.items()}


def _kite_data(answer: HttpAnswer) -> Mapping[str, Any]:
    body = answer.body if isinstance(answer.body, Mapping) else {}
    if answer.status >= 400 or body.get("status") == "error":
        raise kite._error(answer)
    data = body.get("data")
    if not isinstance(data, Mapping) or not data.get("access_token") or not data.get("user_id"):
        raise unreadable(answer, "Kite session")
    return data


def _dhan_validity(body: Mapping[str, Any], now: datetime) -> datetime:
    raw = body.get("tokenValidity")
    try:
        return datetime.strptime(str(raw), DHAN_VALIDITY_FORMAT).replace(tzinfo=IST)
    except ValueError:
        # Dhan's web tokens last 24 hours: the conservative guess when the field is unreadable.
        return now + timedelta(hours=24)
