"""The internal server: management API and PutEvents only for requests signed with the run keys.

Before, both were served on the public API port without any check, so anyone on the machine could
push a forged message to a trader's socket or forge an execution.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.asyncio.client import connect

from shared.domain.contracts import DetailType, EventSource
from tests.e2e.support import Runtime

WITHIN_S = 5.0
FORGED_EXECUTION = {
    "Entries": [
        {
            "Source": EventSource.BROKERS,
            "DetailType": DetailType.EXECUTION_REPORTED,
            "Detail": json.dumps({"order_id": "ord-x", "user_id": "victim"}),
            "EventBusName": "order-router",
        }
    ]
}


def client(runtime: Runtime, service: Any, *, secret: str | None = None) -> Any:
    keys = runtime.internal_credentials()
    return boto3.session.Session().client(
        service,
        endpoint_url=runtime.internal,
        region_name="ap-south-1",
        aws_access_key_id=keys["accessKeyId"],
        aws_secret_access_key=secret or keys["secretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert response.json()["error"]["message"]


def test_the_public_port_no_longer_serves_the_internal_routes(runtime: Runtime) -> None:
    # GIVEN the public API port WHEN the management API or PutEvents is called there
    post = httpx.post(f"{runtime.api}/@connections/abc", content=b"{}")
    events = httpx.post(
        f"{runtime.api}/",
        json=FORGED_EXECUTION,
        headers={"x-amz-target": "AWSEvents.PutEvents"},
    )
    # THEN neither exists there
    assert post.status_code == 404
    assert events.status_code in (404, 405)


def test_unsigned_requests_are_403(runtime: Runtime) -> None:
    # GIVEN someone on the machine without the run's keys
    # WHEN they post to a connection and put a forged execution on the bus
    post = httpx.post(f"{runtime.internal}/@connections/abc", content=b'{"type":"FAKE"}')
    events = httpx.post(
        runtime.internal,
        json=FORGED_EXECUTION,
        headers={
            "x-amz-target": "AWSEvents.PutEvents",
            "content-type": "application/x-amz-json-1.1",
            "authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/ap-south-1/events/"
            "aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            "x-amz-date": "20260101T000000Z",
        },
    )
    # THEN both are refused in the one error shape
    assert_forbidden(post)
    assert_forbidden(events)


async def test_a_request_signed_with_another_secret_does_not_reach_the_socket(
    runtime: Runtime,
) -> None:
    # GIVEN an open socket of a trader, and a client that knows the key id but not the secret
    trader = "trader-internal-forged"
    forger = client(runtime, "apigatewaymanagementapi", secret="guessed")
    async with connect(f"{runtime.ws}/?token={runtime.token(trader)}") as ws:
        [connection_id] = runtime.connections_of(trader)
        # WHEN it pushes a message
        with pytest.raises(ClientError) as refused:
            await asyncio.to_thread(
                forger.post_to_connection, ConnectionId=connection_id, Data=b'{"type":"FAKE"}'
            )
        # THEN it is 403 and nothing reaches the socket
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)


def test_put_events_signed_with_the_run_keys_is_accepted(runtime: Runtime) -> None:
    # GIVEN boto3 with the run's keys (what the production publisher uses in local mode)
    events = client(runtime, "events")
    # WHEN an event no rule matches is put (nothing is tracked)
    result = events.put_events(
        Entries=[
            {
                "Source": "order-router.test",
                "DetailType": "Probe",
                "Detail": "{}",
                "EventBusName": "order-router",
            }
        ]
    )
    # THEN EventBridge's answer comes back
    assert result["FailedEntryCount"] == 0
    assert result["Entries"][0]["EventId"]


def test_the_keys_file_is_private(runtime: Runtime) -> None:
    # GIVEN a running run WHEN its keys file is inspected THEN only its owner may read it
    path = runtime.data_dir / "internal-credentials.json"
    assert path.stat().st_mode & 0o077 == 0
