"""broker_connections: a trader's links to their broker accounts (TRADER group).

List, link (Kite and Upstox by login redirect, Dhan by access token), refresh and unlink; see
docs/brokers.md "Trader broker connections". Each route parses, authorizes from the JWT
authorizer's claims, calls :class:`~shared.services.broker_links.BrokerLinkService` and maps
domain errors to HTTP. Tokens never appear in a log line or an answer: the access-token body is
a ``SecretStr`` and no event is logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.domain.contracts import ApiPath, resolver_path
from shared.domain.errors import DomainError
from shared.domain.identity import trader_from_claims
from shared.domain.models import BROKER_ID_PATTERN
from shared.http import describe, install_error_handlers, loads_json, screen_request
from shared.observability import SERVICE, traced
from shared.services.broker_links import (
    ConnectionList,
    ConnectionView,
    LoginUrl,
    RefreshResult,
)

if TYPE_CHECKING:
    from shared.services.broker_links import BrokerLinkService

app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=loads_json)
logger = Logger(service=SERVICE)
install_error_handlers(app, logger)

BrokerId = Annotated[
    str, Path(alias="brokerId", title="Broker Id", pattern=BROKER_ID_PATTERN, max_length=50)
]
_GRANT = Annotated[str | None, Query(min_length=1, max_length=512)]


class AccessTokenBody(BaseModel):
    """``PUT /broker-connections/{brokerId}``: a token the trader generated at the broker."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(min_length=1, max_length=4096)


def _links() -> BrokerLinkService:
    from shared.wiring import get_wiring

    return get_wiring().broker_links


def _user_id() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim
    return trader_from_claims(claims).user_id


def _ok(model: BaseModel) -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body=model.model_dump_json())


@app.get(resolver_path(ApiPath.BROKER_CONNECTIONS))
def handle_list() -> Response[Any]:
    """The caller's broker connections (status, expiry, account hint; never a token)."""
    listed: ConnectionList = _links().list(_user_id())
    return _ok(listed)


@app.post(resolver_path(ApiPath.BROKER_CONNECTION_LOGIN))
def handle_login(broker_id: BrokerId) -> Response[Any]:
    """Start linking Kite or Upstox: the broker's login URL, carrying a single-use state."""
    login: LoginUrl = _links().start_login(_user_id(), broker_id)
    return _ok(login)


@app.get(resolver_path(ApiPath.BROKER_CONNECTION_CALLBACK))
def handle_callback(
    broker_id: BrokerId,
    state: _GRANT = None,
    request_token: _GRANT = None,
    code: _GRANT = None,
) -> Response[Any]:
    """The broker's redirect: ``request_token`` (Kite) or ``code`` (Upstox), and ``state``."""
    params = {
        k: v
        for k, v in (("state", state), ("request_token", request_token), ("code", code))
        if v is not None
    }
    view: ConnectionView = _links().complete_login(_user_id(), broker_id, params)
    return _ok(view)


@app.put(resolver_path(ApiPath.BROKER_CONNECTION))
def handle_put_token(
    broker_id: BrokerId, body: Annotated[AccessTokenBody, Body()]
) -> Response[Any]:
    """Link Dhan with an access token generated on Dhan's web (checked with Dhan first)."""
    token = body.access_token.get_secret_value()
    view: ConnectionView = _links().put_token(_user_id(), broker_id, token)
    return _ok(view)


@app.post(resolver_path(ApiPath.BROKER_CONNECTION_REFRESH))
def handle_refresh(broker_id: BrokerId) -> Response[Any]:
    """Check the connection again (Dhan), or answer a new login URL (Kite, Upstox)."""
    refreshed: RefreshResult = _links().refresh(_user_id(), broker_id)
    return _ok(refreshed)


@app.delete(resolver_path(ApiPath.BROKER_CONNECTION))
def handle_unlink(broker_id: BrokerId) -> Response[Any]:
    """Unlink: the connection is REVOKED and its token erased."""
    view: ConnectionView = _links().unlink(_user_id(), broker_id)
    return _ok(view)


@app.exception_handler(DomainError)
def handle_domain_error(error: DomainError) -> Response[Any]:
    """Map the service's deliberate errors to HTTP (table in ``shared.http``)."""
    status, body = describe(error)
    if status >= 500:
        logger.warning("request failed", code=error.code)
    return Response(status_code=status, content_type="application/json", body=body)


def screen(event: dict[str, Any]) -> dict[str, Any] | None:
    """The refusal of a request before Powertools reads it, or ``None``.

    405 first; then the caller must be a trader (before any parameter is validated: a caller
    who is not one learns nothing); then the token body's media type, size, encoding, depth
    and shape (:func:`shared.http.screen_request`).
    """
    return screen_request(
        app,
        event,
        authorize=trader_from_claims,
        guarded=lambda _method, _path: True,
        json_body=lambda method, _path: method == "PUT",
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: :func:`screen`, then the routes."""
    rejected = screen(event)
    if rejected is not None:
        logger.info("request refused", status=rejected["statusCode"])
        return rejected
    return app.resolve(event, context)
