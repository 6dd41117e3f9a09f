"""The ws_connect Lambda with realistic API Gateway WebSocket events, end to end on loopback."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.ws_connect import handler
from functions.ws_connect.handler import handle_event, lambda_handler
from local.tokens import issue_local_token
from shared.adapters.apigw_push import ApiGatewayNotifier
from shared.adapters.redis.connections import RedisConnectionRegistry
from shared.domain.connections import ConnectionRecord
from shared.domain.contracts import MessageType
from shared.services.connections import ConnectionService
from shared.settings import Settings
from shared.wiring import Wiring
from tests.integration.websocket.servers import FakeManagementApi
from tests.integration.websocket.support import (
    AUDIENCE,
    LOCAL_ISSUER,
    LOCAL_SECRET,
    claims,
    connection_id,
    rs256,
    ws_event,
)


@pytest.fixture
def connected(service: ConnectionService, rsa_key: rsa.RSAPrivateKey) -> tuple[str, str]:
    """Two open connections of trader-1 (the first one sends messages)."""
    ids = connection_id(), connection_id()
    for conn in ids:
        event = ws_event("$connect", conn, token=rs256(rsa_key, claims()))
        assert handle_event(event, service) == {"statusCode": 200}
    return ids


def replies(api: FakeManagementApi, conn: str) -> list[dict[str, object]]:
    """Messages pushed to one connection."""
    return api.messages(conn)


def test_events_match_the_powertools_models() -> None:
    # GIVEN / WHEN the test events are parsed by Powertools' API Gateway WebSocket models
    # THEN they validate: the handler is tested with the shape API Gateway sends
    APIGatewayWebSocketConnectEventModel.model_validate(ws_event("$connect", "c=", token="t"))
    APIGatewayWebSocketDisconnectEventModel.model_validate(ws_event("$disconnect", "c="))
    APIGatewayWebSocketMessageEventModel.model_validate(ws_event("$default", "c=", body="{}"))


def test_ping_gets_a_pong_on_that_connection_only(
    service: ConnectionService,
    management_api: FakeManagementApi,
    connected: tuple[str, str],
) -> None:
    # GIVEN two connections of one trader
    sender, other = connected
    # WHEN the first sends a ping
    response = handle_event(ws_event("$default", sender, body='{"action":"ping"}'), service)
    # THEN it alone receives a PONG envelope
    assert response == {"statusCode": 200}
    [pong] = replies(management_api, sender)
    assert pong["type"] == MessageType.PONG
    assert pong["data"] == {}
    assert str(pong["timestamp"]).endswith("Z")
    assert replies(management_api, other) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"action":"buy_everything"}', "UNKNOWN_ACTION"),
        ("not json", "INVALID_MESSAGE"),
        ('{"no":"action"}', "INVALID_MESSAGE"),
        (None, "INVALID_MESSAGE"),
        ('{"action":"subscribe","orderIds":["bad id with spaces"]}', "INVALID_MESSAGE"),
        ('{"action":"subscribe","symbols":"TCS"}', "INVALID_MESSAGE"),
    ],
)
def test_bad_messages_get_an_error_on_that_connection_only(
    body: str | None,
    code: str,
    service: ConnectionService,
    management_api: FakeManagementApi,
    connected: tuple[str, str],
) -> None:
    # GIVEN two connections of one trader
    sender, other = connected
    # WHEN the first sends something the router does not understand
    response = handle_event(ws_event("$default", sender, body=body), service)
    # THEN it alone receives an ERROR with the code
    assert response == {"statusCode": 200}
    [error] = replies(management_api, sender)
    assert error["type"] == MessageType.ERROR
    assert isinstance(error["data"], dict)
    assert error["data"]["code"] == code
    assert replies(management_api, other) == []


def test_subscribe_then_filtered_pushes(
    service: ConnectionService,
    notifier: ApiGatewayNotifier,
    registry: RedisConnectionRegistry,
    management_api: FakeManagementApi,
    connected: tuple[str, str],
) -> None:
    # GIVEN one connection subscribed to order o1 and symbol TCS
    sender, other = connected
    body = json.dumps({"action": "subscribe", "orderIds": ["o1"], "symbols": ["TCS"]})
    handle_event(ws_event("$default", sender, body=body), service)
    [ack] = replies(management_api, sender)
    assert ack["type"] == MessageType.SUBSCRIBED
    assert ack["data"] == {"orderIds": ["o1"], "symbols": ["TCS"]}
    management_api.reset()
    # WHEN updates for o1 and o2 (INFY) are pushed to the trader
    notifier.notify_user("trader-1", MessageType.EXECUTION_UPDATE, {"orderId": "o1"})
    notifier.notify_user(
        "trader-1", MessageType.EXECUTION_UPDATE, {"orderId": "o2", "symbol": "INFY"}
    )
    # THEN the subscribed connection got o1 only, the unfiltered one both
    assert [m["data"] for m in replies(management_api, sender)] == [{"orderId": "o1"}]
    assert len(replies(management_api, other)) == 2
    # AND unsubscribing without lists restores "everything"
    handle_event(ws_event("$default", sender, body='{"action":"unsubscribe"}'), service)
    assert registry.get(sender) == ConnectionRecord(sender, "trader-1")


def test_too_many_filters_are_refused(
    service: ConnectionService,
    registry: RedisConnectionRegistry,
    management_api: FakeManagementApi,
    connected: tuple[str, str],
) -> None:
    # GIVEN a connection already following 100 orders
    sender, _ = connected
    registry.subscribe(sender, order_ids=[f"o{i}" for i in range(100)])
    # WHEN it asks for one more
    body = json.dumps({"action": "subscribe", "orderIds": ["o100"]})
    handle_event(ws_event("$default", sender, body=body), service)
    # THEN it gets an error and its filters are unchanged
    [error] = replies(management_api, sender)
    assert error["data"] == {
        "code": "TOO_MANY_FILTERS",
        "message": "at most 100 orderIds and 50 symbols",
    }
    record = registry.get(sender)
    assert record is not None
    assert len(record.order_ids) == 100


def test_message_from_an_unknown_connection_asks_to_reconnect(
    service: ConnectionService, management_api: FakeManagementApi
) -> None:
    # GIVEN a connection the registry does not know (expired or never registered)
    conn = connection_id()
    # WHEN it pings
    handle_event(ws_event("$default", conn, body='{"action":"ping"}'), service)
    # THEN it is told to reconnect
    [error] = replies(management_api, conn)
    assert error["data"] == {
        "code": "UNKNOWN_CONNECTION",
        "message": "connection expired; reconnect",
    }


def test_disconnect_removes_the_connection_and_publishes_the_gauge(
    service: ConnectionService,
    registry: RedisConnectionRegistry,
    connected: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN two open connections
    first, second = connected
    capsys.readouterr()
    # WHEN the first disconnects
    response = handle_event(ws_event("$disconnect", first), service)
    # THEN it is gone, the other stays, and ActiveConnections = 1 was published
    assert response == {"statusCode": 200}
    assert registry.get(first) is None
    assert [r.connection_id for r in registry.connections_of("trader-1")] == [second]
    metrics = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "_aws" in x]
    [gauge] = [m for m in metrics if "ActiveConnections" in m]
    assert gauge["ActiveConnections"] == [1.0]
    assert gauge["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OrderRouter"


def test_lambda_handler_wired_from_settings_in_local_mode(
    ws_settings: Settings,
    management_api: FakeManagementApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the handler's service built by the composition root from local-mode settings
    service = Wiring(ws_settings).connections
    monkeypatch.setattr(handler, "get_service", lambda: service)
    # AND dummy AWS credentials, as local mode provides (the management API is on loopback)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    token = issue_local_token(
        LOCAL_SECRET, user_id="local-trader", issuer=LOCAL_ISSUER, audience=AUDIENCE
    )
    conn = connection_id()
    # WHEN a client connects with a local token and pings
    connected = lambda_handler(ws_event("$connect", conn, token=token), None)  # type: ignore[arg-type]
    lambda_handler(ws_event("$default", conn, body='{"action":"ping"}'), None)  # type: ignore[arg-type]
    # THEN it is accepted and the pong went through the management API
    assert connected == {"statusCode": 200}
    assert [m["type"] for m in replies(management_api, conn)] == [MessageType.PONG]
    # AND a token of the wrong issuer is refused by the same wiring
    forged = issue_local_token(LOCAL_SECRET, user_id="x", issuer="other", audience=AUDIENCE)
    refused = lambda_handler(ws_event("$connect", connection_id(), token=forged), None)  # type: ignore[arg-type]
    assert refused == {"statusCode": 401}


def test_event_without_connection_id_is_400(service: ConnectionService) -> None:
    # GIVEN an event that did not come from API Gateway's WebSocket API
    # WHEN / THEN it is rejected without touching anything
    assert handle_event({"requestContext": {"routeKey": "$connect"}}, service) == {
        "statusCode": 400
    }
