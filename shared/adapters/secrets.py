"""Broker secrets by reference: Secrets Manager in AWS, a JSON setting in local mode and tests.

Both hold one JSON object ``{"<ref>": "<secret>" | ["<current>", "<previous>"]}``; a list lets a
broker's secret rotate without refusing webhooks signed with the old one in the meantime.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from shared.domain.errors import DataUnavailableError


def _secrets_of(mapping: Mapping[str, Any], ref: str) -> list[str]:
    value = mapping.get(ref)
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


class JsonSecretStore:
    """Secrets from a JSON document (``ROUTER_BROKER_SECRETS_JSON``)."""

    def __init__(self, document: str | None) -> None:
        self._mapping: dict[str, Any] = json.loads(document) if document else {}

    def get(self, ref: str) -> list[str]:
        """The secrets of ``ref`` (current first); empty when unknown."""
        return _secrets_of(self._mapping, ref)


class SecretsManagerStore:
    """Secrets from one Secrets Manager secret, cached by Powertools for five minutes."""

    def __init__(self, secret_arn: str, fetch: Callable[..., Any] | None = None) -> None:
        self._arn = secret_arn
        self._fetch = fetch

    def get(self, ref: str) -> list[str]:
        """The secrets of ``ref`` (current first); empty when unknown.

        Raises
        ------
        DataUnavailableError
            When Secrets Manager cannot be reached.
        """
        from aws_lambda_powertools.utilities.parameters import get_secret
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        fetch = self._fetch or get_secret
        try:
            mapping = fetch(self._arn, transform="json", max_age=300)
        except (GetParameterError, TransformParameterError) as exc:
            raise DataUnavailableError("broker secrets unavailable") from exc
        return _secrets_of(mapping or {}, ref)
