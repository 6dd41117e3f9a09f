"""API Gateway WebSocket routes ``$connect``, ``$disconnect`` and ``$default``.

Thin: read the route, the connection id, the ``token`` query parameter or the body, call the
:class:`~shared.services.connections.ConnectionService`, map its errors to status codes. Only
``$connect``'s status matters to API Gateway (non-2xx refuses the connection); replies to
messages travel through the management API, never in the return value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.domain.errors import (
    AuthenticationError,
    CacheUnavailableError,
    ForbiddenError,
    IdentityProviderUnavailableError,
)
from shared.observability import SERVICE
from shared.services.connections import ConnectionService

logger = Logger(service=SERVICE)


def get_service() -> ConnectionService:
    """The container's service, built on the first invocation (tests replace this function)."""
    from shared.wiring import get_wiring

    return get_wiring().connections


def _status(code: int) -> dict[str, Any]:
    return {"statusCode": code}


def _connect(service: ConnectionService, connection_id: str, token: str | None) -> dict[str, Any]:
    try:
        service.connect(connection_id, token)
    except AuthenticationError as exc:
        logger.info("websocket connect refused", extra={"reason": str(exc)})
        return _status(401)
    except ForbiddenError:
        logger.info("websocket connect forbidden")
        return _status(403)
    except (CacheUnavailableError, IdentityProviderUnavailableError):
        logger.exception("websocket connect failed: dependency unavailable")
        return _status(503)
    return _status(200)


def handle_event(event: Mapping[str, Any], service: ConnectionService) -> dict[str, Any]:
    """Dispatch one WebSocket event to ``service``.

    Parameters
    ----------
    event
        The API Gateway WebSocket event.
    service
        The connection service.

    Returns
    -------
    dict
        ``{"statusCode": 200}``; on ``$connect`` also 400 (no connection id), 401 (bad token),
        403 (neither TRADER nor ADMIN) or 503 (Redis or the identity provider unavailable).
    """
    ws_event = APIGatewayWebSocketEvent(dict(event))
    context = ws_event.request_context
    route = context.get("routeKey")
    connection_id = context.get("connectionId")
    if not isinstance(connection_id, str) or not connection_id:
        logger.warning("websocket event without a connection id", extra={"route": route})
        return _status(400)
    logger.append_keys(route=route, connection_id=connection_id)
    if route == "$connect":
        token = (ws_event.query_string_parameters or {}).get("token")
        return _connect(service, connection_id, token)
    if route == "$disconnect":
        service.disconnect(connection_id)
        return _status(200)
    service.handle_message(connection_id, ws_event.decoded_body)
    return _status(200)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point of the WebSocket API's three routes."""
    return handle_event(event, get_service())
