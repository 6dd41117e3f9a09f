"""Signature Version 4 checks of the local internal server, against botocore's own signer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.internal_server import InternalCredentials, new_credentials, verify_sigv4

HOST = "127.0.0.1:8082"


def signed(
    keys: InternalCredentials,
    *,
    path: str = "/%40connections/abc",
    body: bytes = b'{"hello":1}',
) -> tuple[str, dict[str, str], bytes]:
    """A request signed by botocore, as boto3 sends it (``X-Amz-Date`` is the signing time)."""
    request = AWSRequest(method="POST", url=f"http://{HOST}{path}", data=body)
    SigV4Auth(
        Credentials(keys.access_key_id, keys.secret_access_key), "execute-api", "ap-south-1"
    ).add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = HOST
    return path, headers, body


def signed_at(request: tuple[str, dict[str, str], bytes]) -> datetime:
    return datetime.strptime(request[1]["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def check(
    keys: InternalCredentials, request: tuple[str, dict[str, str], bytes], **changes: object
) -> str | None:
    path, headers, body = request
    values: dict[str, object] = {
        "method": "POST",
        "raw_path": path,
        "query": "",
        "headers": headers,
        "body": body,
        "credentials": keys,
        "now": signed_at(request),
    }
    values.update(changes)
    return verify_sigv4(**values)  # type: ignore[arg-type]


def test_a_request_signed_with_the_run_keys_passes() -> None:
    # GIVEN a request botocore signed with this run's keys WHEN verified THEN it passes
    keys = new_credentials()
    assert check(keys, signed(keys)) is None


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"body": b'{"hello":2}'}, "does not match"),
        ({"raw_path": "/%40connections/other"}, "does not match"),
        ({"method": "DELETE"}, "does not match"),
        ({"late_by": timedelta(minutes=6)}, "expired"),
        ({"credentials": new_credentials()}, "access key"),
    ],
)
def test_a_changed_replayed_or_foreign_request_is_refused(
    tamper: dict[str, object], reason: str
) -> None:
    # GIVEN a correctly signed request WHEN any signed part changes, it is late or another
    # run's keys are expected THEN it is refused, naming why
    keys = new_credentials()
    request = signed(keys)
    changes = dict(tamper)
    late_by = changes.pop("late_by", None)
    if isinstance(late_by, timedelta):
        changes["now"] = signed_at(request) + late_by
    refused = check(keys, request, **changes)
    assert refused is not None
    assert reason in refused


def test_the_right_key_id_with_a_guessed_secret_is_refused() -> None:
    # GIVEN a forger who read the key id (e.g. from a process listing) but not the secret
    keys = new_credentials()
    forged = InternalCredentials(keys.access_key_id, "guessed")
    # WHEN it signs a request THEN the signature does not match
    refused = check(keys, signed(forged))
    assert refused is not None
    assert "does not match" in refused


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer x", "AWS4-HMAC-SHA256 nonsense", "AWS4-HMAC-SHA256 Credential=a/b"],
)
def test_unsigned_or_malformed_authorization_is_refused(authorization: str) -> None:
    # GIVEN a request without a well-formed signature WHEN verified THEN it is refused
    keys = new_credentials()
    path, headers, body = signed(keys)
    headers["authorization"] = authorization
    assert check(keys, (path, headers, body)) is not None


def test_each_run_gets_different_keys() -> None:
    # GIVEN two runs WHEN each makes keys THEN they differ (a key of one run is useless later)
    first, second = new_credentials(), new_credentials()
    assert first.access_key_id != second.access_key_id
    assert first.secret_access_key != second.secret_access_key
