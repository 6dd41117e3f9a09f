"""Helpers of the tests in tests/handlers/ (importable: tests never import a conftest module)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from local import seed
from local.apigw import LocalLambdaContext, http_api_event
from shared.domain.contracts import TRADER_PREFIX
from shared.settings import Settings

TRADER = {"sub": "trader-1", "cognito:groups": ["TRADER"]}

OTHER_TRADER = {"sub": "trader-2", "cognito:groups": ["TRADER"]}

ADMIN = {"sub": "operator-1", "cognito:groups": ["ADMIN"]}

API = TRADER_PREFIX

# Handler tests need every paper broker to behave predictably; the cascade tests change one.
RELIABLE = {"rejectRate": 0.0, "timeoutRate": 0.0, "partialFillRate": 0.0, "ackLatencyMs": 20}


class RecordingNotifier:
    """A Notifier that remembers what it pushes (the WebSocket suite tests the real one)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.profile_updates: list[tuple[str, str, dict[str, Any]]] = []
        self.broadcasts: list[tuple[str, dict[str, Any]]] = []

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

    def notify_all(self, message_type: str, data: Mapping[str, Any]) -> int:
        self.broadcasts.append((message_type, dict(data)))
        return 1


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
