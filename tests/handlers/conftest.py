"""Handler tests: real Postgres and Redis, moto for EventBridge, the real handlers and wiring."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

import shared.wiring
from local import seed
from local.apigw import LocalLambdaContext, http_api_event
from local.services import free_port
from shared.domain.contracts import TRADER_PREFIX
from shared.settings import Settings
from shared.wiring import Wiring, utc_now

TRADER = {"sub": "trader-1", "cognito:groups": ["TRADER"]}
OTHER_TRADER = {"sub": "trader-2", "cognito:groups": ["TRADER"]}
API = TRADER_PREFIX
BUS = "order-router"

# Handler tests need every paper broker to behave predictably; the cascade tests change one.
RELIABLE = {"rejectRate": 0.0, "timeoutRate": 0.0, "partialFillRate": 0.0, "ackLatencyMs": 20}


class RecordingNotifier:
    """A Notifier that remembers what it pushes (the WebSocket suite tests the real one)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.profile_updates: list[tuple[str, str, dict[str, Any]]] = []

    def notify_user(self, user_id: str, message_type: str, data: Mapping[str, Any]) -> int:
        self.messages.append((user_id, message_type, dict(data)))
        return 1

    def notify_users(self, messages: Sequence[tuple[str, str, Mapping[str, Any]]]) -> int:
        for user_id, message_type, data in messages:
            self.notify_user(user_id, message_type, data)
        return len(messages)

    def notify_symbol_subscribers(
        self, symbol: str, message_type: str, data: Mapping[str, Any]
    ) -> int:
        self.profile_updates.append((symbol, message_type, dict(data)))
        return 1


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's EventBridge with our bus and a queue receiving every event on it."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-south-1",
        "AWS_REGION": "ap-south-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        events = boto3.client("events", region_name="ap-south-1")
        sqs = boto3.client("sqs", region_name="ap-south-1")
        events.create_event_bus(Name=BUS)
        queue_url = sqs.create_queue(QueueName="all-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": ""}]})
        )
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
        yield EventSink(sqs, queue_url)


class EventSink:
    """Reads what reached the bus."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while True:
            batch = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return self.seen
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def detail_types(self) -> list[str]:
        return [e["detail-type"] for e in self.drain()]


def handler_settings(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with the paper brokers' webhook secrets, a short broker timeout and
    ``changes`` (validated again, as at a cold start)."""
    return Settings(
        **{
            **settings.model_dump(),
            "broker_secrets_json": json.dumps(seed.webhook_secrets()),
            "broker_timeout_ms": 500,
            "db_pool_max": 12,
            **changes,
        }
    )


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The handlers' settings on this test's database and key prefix."""
    return handler_settings(settings)


@pytest.fixture
def unreachable_postgres(app_settings: Settings) -> Settings:
    """The same settings with a Postgres address nobody listens on."""
    return handler_settings(
        app_settings,
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x",
        db_connect_timeout_s=1.0,
    )


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def wiring_overrides() -> dict[str, Any]:
    """Parts of the wiring a test module replaces (e.g. the risk service's ``clock``)."""
    return {}


@pytest.fixture
def wiring(
    app_settings: Settings,
    aws: EventSink,
    notifier: RecordingNotifier,
    wiring_overrides: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Wiring]:
    """The handlers' wiring on this test's database, seeded with reliable paper brokers.

    Instruments get a band dated on the wiring's clock, so a test clock keeps them current.
    """
    built = Wiring(app_settings, notifier=notifier, **wiring_overrides)
    for broker in seed.seed_brokers():
        built.brokers.upsert(
            broker.model_copy(update={"adapter_config": {**broker.adapter_config, **RELIABLE}})
        )
    for profile in seed.seed_profiles(utc_now()):
        built.profile_repository.upsert(profile)
    for instrument in seed.seed_instruments(built.clock()):
        built.instruments.upsert(instrument)
    monkeypatch.setattr(shared.wiring, "get_wiring", lambda: built)
    yield built
    built.database.close()


def call(
    handler: Any,
    method: str,
    path: str,
    *,
    body: Any = None,
    claims: Mapping[str, Any] | None = TRADER,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """Invoke a handler with an HTTP API event; return status, decoded body and headers."""
    raw = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    event = http_api_event(
        method,
        path,
        body=raw,
        headers={"content-type": "application/json", **(headers or {})},
        query=query,
        claims=claims,
    )
    response = handler.lambda_handler(event, LocalLambdaContext("test"))
    payload = response.get("body")
    decoded = json.loads(payload) if payload else None
    return response["statusCode"], decoded, response.get("headers", {})
