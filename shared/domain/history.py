"""A trader's order history: filters and the opaque keyset cursor (pure).

Pages are ordered newest first by ``(created_at, order_id)``; the cursor carries the last row's
key, so an order inserted while a client pages appears only before its first page and never
shifts a later one. The cursor also carries a digest of the filters it was issued for: reused
with other filters, or altered, it is refused (422), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field, ValidationError

from shared.domain.errors import InvalidRequestError
from shared.domain.models import SYMBOL_PATTERN, FrozenModel

MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_CURSOR_CHARS = 512
ORDER_STATUS_PATTERN = r"^[A-Z_]{1,20}$"


def _utc(value: datetime) -> datetime:
    # Python accepts offsets up to 24 h, Postgres only up to 16 h: store and send UTC only.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


UtcTimestamp = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A zoned timestamp, converted to UTC."""


class HistoryKey(FrozenModel):
    """The position after which the next page starts."""

    created_at: UtcTimestamp
    order_id: str = Field(min_length=1, max_length=50)


class HistoryQuery(FrozenModel):
    """Filters of ``GET /orders`` and the page asked for."""

    status: str | None = Field(default=None, pattern=ORDER_STATUS_PATTERN)
    symbol: str | None = Field(default=None, pattern=SYMBOL_PATTERN)
    since: UtcTimestamp | None = None
    until: UtcTimestamp | None = None
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    after: HistoryKey | None = None

    def digest(self) -> str:
        """A short digest of the filters (not the page), bound into every cursor."""
        filters = self.model_dump(mode="json", include={"status", "symbol", "since", "until"})
        text = json.dumps(filters, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(query: HistoryQuery, last: HistoryKey) -> str:
    """The opaque cursor of the page after ``last`` under ``query``'s filters."""
    payload = {
        "t": last.created_at.isoformat(),
        "o": last.order_id,
        "f": query.digest(),
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(query: HistoryQuery, cursor: str) -> HistoryKey:
    """The key a cursor carries, checked against ``query``'s filters.

    Raises
    ------
    InvalidRequestError
        Not a cursor this service issued, or issued for other filters (422).
    """
    payload = _payload(cursor)
    try:
        key = HistoryKey(created_at=payload["t"], order_id=payload["o"])
    except (KeyError, TypeError, ValidationError):
        raise InvalidRequestError("cursor", "the cursor is not valid") from None
    if payload.get("f") != query.digest():
        raise InvalidRequestError("cursor", "the cursor belongs to other filters")
    return key


def _payload(cursor: str) -> dict[str, Any]:
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidRequestError("cursor", "the cursor is not valid")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise InvalidRequestError("cursor", "the cursor is not valid") from None
    if not isinstance(payload, dict):
        raise InvalidRequestError("cursor", "the cursor is not valid")
    return payload


def last_key(created_at: datetime, order_id: str) -> HistoryKey:
    """The key of a listed order (what the next cursor points after)."""
    return HistoryKey(created_at=created_at, order_id=order_id)
