"""Envelope encryption of broker tokens (:class:`shared.ports.SecretSealer`).

Each secret gets a fresh 256-bit data key; the secret is encrypted with AES-256-GCM under it
and the data key is itself encrypted ("wrapped") by a key-encryption key: a KMS key in AWS
(``GenerateDataKey``/``Decrypt``, the plaintext data key never stored), a local key from
settings in local mode and tests. The trader and broker are bound in as the encryption
context (KMS) and as GCM associated data, so a row copied to another trader does not open.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from cachetools import TTLCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.domain.errors import DataUnavailableError
from shared.ports import SealedSecret

NONCE_BYTES = 12
DATA_KEY_BYTES = 32
DATA_KEY_CACHE_TTL_S = 300.0
"""How long an unwrapped data key stays in process memory (fewer KMS Decrypt calls)."""


def _aad(context: Mapping[str, str]) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise ValueError("sealed secret does not open: tampered, or another context") from exc


class LocalKeySealer:
    """Data keys wrapped by a local 256-bit key (local mode and tests; never in AWS).

    Parameters
    ----------
    key
        32 bytes: the key-encryption key.
    key_id
        Its name, stored with each secret.
    """

    def __init__(self, key: bytes, *, key_id: str = "local") -> None:
        if len(key) != DATA_KEY_BYTES:
            raise ValueError("the local key-encryption key must be 32 bytes")
        self._key = key
        self._key_id = key_id

    def seal(self, plaintext: bytes, context: Mapping[str, str]) -> SealedSecret:
        """Encrypt under a fresh data key wrapped by the local key."""
        data_key = AESGCM.generate_key(bit_length=256)
        aad = _aad(context)
        return SealedSecret(
            ciphertext=_encrypt(data_key, plaintext, aad),
            wrapped_key=_encrypt(self._key, data_key, aad),
            key_id=self._key_id,
        )

    def open(self, sealed: SealedSecret, context: Mapping[str, str]) -> bytes:
        """Unwrap the data key, then decrypt; ``ValueError`` when anything was tampered with."""
        if sealed.key_id != self._key_id:
            raise ValueError(f"sealed under another key ({sealed.key_id})")
        aad = _aad(context)
        return _decrypt(_decrypt(self._key, sealed.wrapped_key, aad), sealed.ciphertext, aad)


class KmsEnvelopeSealer:
    """Data keys from AWS KMS (``GenerateDataKey``), unwrapped with ``Decrypt``.

    Parameters
    ----------
    client
        Builds the boto3 KMS client on first use (no I/O at cold start).
    key_id
        The KMS key's ARN or alias.
    """

    def __init__(self, client: Callable[[], Any], key_id: str) -> None:
        self._client_factory = client
        self._client: Any = None
        self._key_id = key_id
        self._keys: TTLCache[bytes, bytes] = TTLCache(maxsize=256, ttl=DATA_KEY_CACHE_TTL_S)

    def _kms(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def seal(self, plaintext: bytes, context: Mapping[str, str]) -> SealedSecret:
        """Encrypt under a fresh KMS data key bound to ``context``."""
        answer = self._call(
            "generate_data_key",
            KeyId=self._key_id,
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        return SealedSecret(
            ciphertext=_encrypt(answer["Plaintext"], plaintext, _aad(context)),
            wrapped_key=answer["CiphertextBlob"],
            key_id=str(answer.get("KeyId") or self._key_id),
        )

    def open(self, sealed: SealedSecret, context: Mapping[str, str]) -> bytes:
        """Unwrap the data key with KMS (cached a few minutes), then decrypt."""
        cache_key = sealed.wrapped_key + _aad(context)
        data_key = self._keys.get(cache_key)
        if data_key is None:
            answer = self._call(
                "decrypt",
                CiphertextBlob=sealed.wrapped_key,
                EncryptionContext=dict(context),
                KeyId=sealed.key_id,
            )
            data_key = self._keys[cache_key] = answer["Plaintext"]
        return _decrypt(data_key, sealed.ciphertext, _aad(context))

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._kms(), operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise ValueError(f"KMS refused the data key: {code}") from exc
            raise DataUnavailableError(f"KMS {operation} failed: {code}") from exc
        except BotoCoreError as exc:
            raise DataUnavailableError(f"KMS {operation} failed: {type(exc).__name__}") from exc


class UnconfiguredSealer:
    """No key-encryption key configured: every use is unavailable (503), nothing is stored.

    Lets a deployment without broker connections (paper brokers only) start; linking a broker
    or routing to a real one then answers why.
    """

    def seal(self, plaintext: bytes, context: Mapping[str, str]) -> SealedSecret:
        """Refuse: there is no key to seal with."""
        raise DataUnavailableError("no key-encryption key configured for broker connections")

    def open(self, sealed: SealedSecret, context: Mapping[str, str]) -> bytes:
        """Refuse: there is no key to open with."""
        raise DataUnavailableError("no key-encryption key configured for broker connections")
