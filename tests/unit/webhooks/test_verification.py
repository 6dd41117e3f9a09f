"""Webhook verification: Kite checksum, HMAC with replay window, secret path token."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.brokers.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_kite_checksum,
    parse_json_body,
    sign_webhook,
    verify_kite_checksum,
    verify_path_token,
    verify_signed_webhook,
)
from shared.domain.errors import AuthenticationError

SAMPLES = Path(__file__).parent / "samples"
KITE_SECRET = "kite-test-secret"  # the secret the sample checksums were made with
SECRET = "whsec-paper-broker-test"
NOW = datetime(2026, 11, 24, 4, 0, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
BODY = b'{"brokerOrderId":"P-1","status":"FILLED"}'


def kite_sample(name: str) -> dict[str, Any]:
    return parse_json_body((SAMPLES / name).read_bytes())


# --------------------------------------------------------------------------------------------
# Kite


def test_kite_checksum_is_sha256_of_order_id_timestamp_and_secret() -> None:
    # GIVEN an order id, its timestamp and a secret
    # WHEN the checksum is computed
    checksum = compute_kite_checksum("220303000308932", "2022-03-03 09:24:25", "s3cret")
    # THEN it is the SHA-256 hex of their concatenation
    expected = hashlib.sha256(b"2203030003089322022-03-03 09:24:25s3cret").hexdigest()
    assert checksum == expected


@pytest.mark.parametrize("name", ["kite_complete.json", "kite_rejected.json"])
def test_kite_sample_with_correct_checksum_verifies(name: str) -> None:
    # GIVEN a Kite postback signed with our API secret
    payload = kite_sample(name)
    # WHEN it is verified
    # THEN nothing is raised
    verify_kite_checksum(payload, KITE_SECRET)


def test_kite_checksum_verifies_with_the_new_secret_during_rotation() -> None:
    # GIVEN the old and the new secret configured
    payload = kite_sample("kite_complete.json")
    # WHEN verified against both
    # THEN the matching one is accepted
    verify_kite_checksum(payload, ["new-secret-not-yet-used", KITE_SECRET])


def test_kite_forged_checksum_is_rejected() -> None:
    # GIVEN a postback whose checksum was made with a secret other than ours
    payload = kite_sample("kite_complete.json")
    payload["checksum"] = compute_kite_checksum(
        payload["order_id"], payload["order_timestamp"], "attacker-guess"
    )
    # WHEN it is verified
    # THEN it is rejected
    with pytest.raises(AuthenticationError, match="does not match"):
        verify_kite_checksum(payload, KITE_SECRET)


def test_kite_checksum_of_another_order_is_rejected() -> None:
    # GIVEN a genuine checksum moved onto another order id
    payload = kite_sample("kite_complete.json")
    payload["order_id"] = "220303000308933"
    # WHEN it is verified
    # THEN it is rejected
    with pytest.raises(AuthenticationError):
        verify_kite_checksum(payload, KITE_SECRET)


@pytest.mark.parametrize("field", ["checksum", "order_id", "order_timestamp"])
def test_kite_postback_missing_a_signed_field_is_rejected(field: str) -> None:
    # GIVEN a postback without one of the fields the checksum needs
    payload = kite_sample("kite_complete.json")
    del payload[field]
    # WHEN it is verified
    # THEN it is rejected
    with pytest.raises(AuthenticationError):
        verify_kite_checksum(payload, KITE_SECRET)


def test_kite_without_configured_secret_fails_closed() -> None:
    # GIVEN no secret configured
    payload = kite_sample("kite_complete.json")
    # WHEN verified
    # THEN it is rejected instead of accepted
    with pytest.raises(AuthenticationError, match="no webhook secret"):
        verify_kite_checksum(payload, "")


# --------------------------------------------------------------------------------------------
# HMAC


def test_signing_produces_v1_hmac_over_timestamp_dot_body() -> None:
    # GIVEN a body, a secret and a timestamp
    # WHEN the paper broker signs it
    headers = sign_webhook(BODY, SECRET, timestamp=TS)
    # THEN the headers carry the timestamp and HMAC-SHA256(secret, "<ts>." + body)
    expected = hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: str(TS), SIGNATURE_HEADER: f"v1={expected}"}


@pytest.mark.parametrize("age_s", [0, 1, 299, 300, -60])
def test_signed_webhook_within_the_window_verifies(age_s: int) -> None:
    # GIVEN a webhook signed age_s seconds before now (negative: slightly ahead of us)
    headers = sign_webhook(BODY, SECRET, timestamp=TS - age_s)
    # WHEN it is verified
    verified = verify_signed_webhook(headers, BODY, SECRET, now=NOW)
    # THEN its timestamp is returned
    assert verified == TS - age_s


def test_replay_after_the_window_is_rejected() -> None:
    # GIVEN a genuine webhook replayed 5 minutes and 1 second later
    headers = sign_webhook(BODY, SECRET, timestamp=TS)
    # WHEN it is verified
    # THEN it is rejected as outside the replay window
    with pytest.raises(AuthenticationError, match="replay window"):
        verify_signed_webhook(headers, BODY, SECRET, now=NOW + timedelta(seconds=301))


def test_webhook_from_the_future_is_rejected() -> None:
    # GIVEN a webhook stamped 10 minutes ahead of our clock (pre-signed for a later replay)
    headers = sign_webhook(BODY, SECRET, timestamp=TS + 600)
    # WHEN it is verified
    # THEN it is rejected
    with pytest.raises(AuthenticationError, match="replay window"):
        verify_signed_webhook(headers, BODY, SECRET, now=NOW)


def test_tampered_body_is_rejected() -> None:
    # GIVEN a signed body altered in transit
    headers = sign_webhook(BODY, SECRET, timestamp=TS)
    tampered = BODY.replace(b"FILLED", b"REJECTED")
    # WHEN it is verified
    # THEN it is rejected
    with pytest.raises(AuthenticationError, match="does not match"):
        verify_signed_webhook(headers, tampered, SECRET, now=NOW)


def test_re_stamped_timestamp_is_rejected() -> None:
    # GIVEN an old genuine signature with a fresh timestamp header pasted in
    headers = sign_webhook(BODY, SECRET, timestamp=TS - 3600)
    headers[TIMESTAMP_HEADER] = str(TS)
    # WHEN it is verified
    # THEN the signature no longer matches
    with pytest.raises(AuthenticationError, match="does not match"):
        verify_signed_webhook(headers, BODY, SECRET, now=NOW)


def test_wrong_secret_is_rejected() -> None:
    # GIVEN a webhook signed with another broker's secret
    headers = sign_webhook(BODY, "someone-else", timestamp=TS)
    # WHEN it is verified with ours
    # THEN it is rejected
    with pytest.raises(AuthenticationError):
        verify_signed_webhook(headers, BODY, SECRET, now=NOW)


def test_headers_are_case_insensitive_and_rotation_is_supported() -> None:
    # GIVEN lower-cased headers (API Gateway v2) carrying two signatures during a key rotation
    old = sign_webhook(BODY, "old-secret", timestamp=TS)[SIGNATURE_HEADER]
    new = sign_webhook(BODY, SECRET, timestamp=TS)[SIGNATURE_HEADER]
    headers = {"x-router-timestamp": str(TS), "x-router-signature": f"{old}, {new}"}
    # WHEN verified with only the new secret configured
    # THEN it is accepted
    assert verify_signed_webhook(headers, BODY, SECRET, now=NOW) == TS


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TIMESTAMP_HEADER: str(TS)},
        {TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "v1=" + "0" * 64},
        {TIMESTAMP_HEADER: str(TS), SIGNATURE_HEADER: "v0=" + "0" * 64},
        {TIMESTAMP_HEADER: str(TS), SIGNATURE_HEADER: "v1=nothex"},
    ],
)
def test_missing_or_malformed_signature_headers_are_rejected(headers: dict[str, str]) -> None:
    # GIVEN headers without a usable timestamp or v1 signature
    # WHEN verified
    # THEN the request is rejected
    with pytest.raises(AuthenticationError):
        verify_signed_webhook(headers, BODY, SECRET, now=NOW)


def test_naive_now_is_a_programming_error() -> None:
    # GIVEN a naive "now"
    headers = sign_webhook(BODY, SECRET, timestamp=TS)
    # WHEN verification is asked
    # THEN it refuses to guess the zone
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_signed_webhook(headers, BODY, SECRET, now=datetime(2026, 11, 24))


# --------------------------------------------------------------------------------------------
# Path token


TOKEN = "q8yYb4i7cI0l3WgQ9mZ2mJm2w2b3xJkqJ0o0bU5l0pA"


def test_right_path_token_is_accepted() -> None:
    # GIVEN the configured token in the URL
    # WHEN verified
    # THEN nothing is raised
    verify_path_token(TOKEN, TOKEN)


def test_path_token_rotation_accepts_either() -> None:
    # GIVEN the old and the new token configured during rotation
    # WHEN the old one is presented
    # THEN it is still accepted
    verify_path_token(TOKEN, ["new-token-value-0123456789abcdef", TOKEN])


@pytest.mark.parametrize("presented", ["wrong-token", TOKEN[:-1], TOKEN + "x", "", None])
def test_wrong_or_missing_path_token_is_rejected(presented: str | None) -> None:
    # GIVEN a wrong, truncated, extended or missing token
    # WHEN verified
    # THEN it is rejected
    with pytest.raises(AuthenticationError):
        verify_path_token(presented, TOKEN)


def test_path_token_without_configuration_fails_closed() -> None:
    # GIVEN no token configured and none presented
    # WHEN verified
    # THEN the empty strings do not "match"
    with pytest.raises(AuthenticationError, match="no webhook secret"):
        verify_path_token("", "")


def test_samples_are_valid_json_objects() -> None:
    # GIVEN every sample file
    # WHEN each is parsed
    parsed = [json.loads(path.read_text()) for path in sorted(SAMPLES.glob("*.json"))]
    # THEN each is an object (the fixtures themselves are sound)
    assert parsed
    assert all(isinstance(p, dict) for p in parsed)
