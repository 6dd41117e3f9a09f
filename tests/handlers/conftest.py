"""Handler tests: real Postgres and Redis, moto for EventBridge, the real handlers and wiring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import shared.wiring
from local import seed
from local.services import free_port
from shared.settings import Settings
from shared.wiring import Wiring, utc_now
from tests.handlers.support import RELIABLE, EventSink, RecordingNotifier, handler_settings

BUS = "order-router"


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
