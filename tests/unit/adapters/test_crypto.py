"""Envelope encryption of broker tokens: the local key, and KMS (moto) as in AWS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.adapters.crypto import KmsEnvelopeSealer, LocalKeySealer
from shared.domain.errors import DataUnavailableError

ALICE = {"user_id": "alice", "broker_id": "kite"}
BOB = {"user_id": "bob", "broker_id": "kite"}
SECRET = b'{"api_key": "k", "access_token": "tok-123"}'


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("kms", region_name="ap-south-1")
        key_id = client.create_key(Description="broker tokens")["KeyMetadata"]["KeyId"]
        yield client, key_id


def test_a_local_sealed_secret_opens_only_in_its_context() -> None:
    # GIVEN a token sealed for Alice at Kite
    sealer = LocalKeySealer(bytes(32))
    sealed = sealer.seal(SECRET, ALICE)
    # WHEN it is opened for Alice, for Bob, and tampered with
    # THEN only Alice's context opens it, and the ciphertext never holds the token
    assert sealer.open(sealed, ALICE) == SECRET
    assert b"tok-123" not in sealed.ciphertext
    assert b"tok-123" not in sealed.wrapped_key
    with pytest.raises(ValueError, match="does not open"):
        sealer.open(sealed, BOB)
    flipped = bytes([sealed.ciphertext[-1] ^ 1])
    with pytest.raises(ValueError, match="does not open"):
        sealer.open(replace(sealed, ciphertext=sealed.ciphertext[:-1] + flipped), ALICE)
    with pytest.raises(ValueError, match="another key"):
        LocalKeySealer(bytes(32), key_id="other").open(sealed, ALICE)


def test_a_local_key_must_be_256_bits() -> None:
    # GIVEN a 16-byte key
    # WHEN a sealer is built with it
    # THEN it is refused
    with pytest.raises(ValueError, match="32 bytes"):
        LocalKeySealer(bytes(16))


def test_kms_wraps_a_fresh_data_key_per_secret_bound_to_its_context(
    kms: tuple[Any, str],
) -> None:
    # GIVEN a KMS key and a sealer using it
    client, key_id = kms
    sealer = KmsEnvelopeSealer(lambda: client, key_id)
    # WHEN two secrets are sealed
    first = sealer.seal(SECRET, ALICE)
    second = sealer.seal(SECRET, ALICE)
    # THEN each has its own data key, opens in its context only, and names the KMS key
    assert first.wrapped_key != second.wrapped_key
    assert first.ciphertext != second.ciphertext
    assert key_id in first.key_id
    assert sealer.open(first, ALICE) == SECRET
    assert KmsEnvelopeSealer(lambda: client, key_id).open(second, ALICE) == SECRET
    with pytest.raises(ValueError, match="KMS refused"):
        KmsEnvelopeSealer(lambda: client, key_id).open(first, BOB)


def test_kms_out_of_reach_is_data_unavailable(kms: tuple[Any, str]) -> None:
    # GIVEN a sealer whose KMS key does not exist
    client, _ = kms
    sealer = KmsEnvelopeSealer(lambda: client, "arn:aws:kms:ap-south-1:123456789012:key/none")
    # WHEN a secret is sealed
    # THEN the failure is the service being unavailable, not a crash
    with pytest.raises(DataUnavailableError, match="generate_data_key"):
        sealer.seal(SECRET, ALICE)
