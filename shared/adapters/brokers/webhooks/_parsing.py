"""Field readers shared by the normalisers: every failure names the broker's own field."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from pydantic import ValidationError

from shared.domain.errors import (
    ImpossibleReportError,
    InvalidExecutionReportError,
    MalformedPayloadError,
    UnsupportedPayloadError,
)
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import SYMBOL_PATTERN, Exchange, Side

IST = timezone(timedelta(hours=5, minutes=30), "IST")
"""India Standard Time. A fixed offset (India has no daylight saving), so no tz database is
needed in the Lambda image."""

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
_INTEGER_RE = re.compile(r"^[+-]?\d{1,18}$")
_EQUITY_SERIES_SUFFIX = "-EQ"


class Phase(Enum):
    """What a broker's status label says, before quantities refine it."""

    WORKING = "working"
    DONE = "done"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


MAX_BODY_BYTES = 64 * 1024
"""Largest webhook body read: a postback is about 1 KiB; anything this big is not one."""
MAX_JSON_DEPTH = 16
"""Deepest nesting of arrays and objects accepted; postbacks are one or two levels deep."""
MAX_INTEGER_DIGITS = 36
"""Longest integer accepted: larger is no quantity any exchange deals in, and every idempotency
key built from one must fit ``VARCHAR(200)``. (10^30 still parses, and is quarantined as an
impossible fill.)"""

# Strings (with their escapes) are blanked before brackets are counted: a "[" inside a string
# does not nest. The alternation is disjoint, so the pattern runs in linear time.
_JSON_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def check_json_bounds(raw: bytes) -> None:
    """Refuse a body too large or nested too deep, before any JSON parser sees it.

    The standard library's parser recurses once per level and raises ``RecursionError`` on a
    few thousand (a 500 on an unauthenticated route); the parsers that bound depth (orjson,
    pydantic-core) cannot keep fractions as exact ``Decimal``. So the depth is counted here,
    without recursion, on the raw bytes.

    Raises
    ------
    MalformedPayloadError
        Field ``body``: larger than :data:`MAX_BODY_BYTES` or deeper than
        :data:`MAX_JSON_DEPTH`.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise MalformedPayloadError("body", f"larger than {MAX_BODY_BYTES} bytes")
    brackets = _JSON_STRING_RE.sub(b"", raw).translate(None, _BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise MalformedPayloadError("body", f"nested deeper than {MAX_JSON_DEPTH} levels")


def parse_json_body(raw: bytes | str) -> dict[str, Any]:
    """Decode a webhook body, keeping every JSON number with a fraction as an exact ``Decimal``.

    Parameters
    ----------
    raw
        The raw HTTP body (verify signatures over these exact bytes before parsing).

    Returns
    -------
    dict[str, Any]
        The top-level JSON object.

    Raises
    ------
    MalformedPayloadError
        Field ``body``: too large or deep (:func:`check_json_bounds`), not UTF-8, not JSON,
        NaN/Infinity, an integer of more than :data:`MAX_INTEGER_DIGITS` digits, or not an
        object.
    """

    def _no_constants(name: str) -> Any:
        raise MalformedPayloadError("body", f"{name} is not a valid JSON number")

    def _bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise MalformedPayloadError("body", f"integer of more than {MAX_INTEGER_DIGITS} digits")
        return int(digits)

    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    check_json_bounds(data)
    try:
        value = json.loads(
            data.decode("utf-8"),
            parse_float=Decimal,
            parse_int=_bounded_int,
            parse_constant=_no_constants,
        )
    except UnicodeDecodeError as exc:
        raise MalformedPayloadError("body", "not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise MalformedPayloadError("body", f"not valid JSON ({exc.msg} at {exc.pos})") from exc
    except (ValueError, RecursionError) as exc:  # bounds above make these unreachable
        raise MalformedPayloadError("body", "not a JSON body this service reads") from exc
    if not isinstance(value, dict):
        raise MalformedPayloadError("body", "must be a JSON object")
    return value


def text(payload: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    """A non-blank string field, stripped; numbers are accepted (ids are sometimes numeric)."""
    value = payload.get(key)
    if isinstance(value, bool):
        raise MalformedPayloadError(key, "must be a string")
    if isinstance(value, int | Decimal):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MalformedPayloadError(key, "is missing")
        return None
    if not isinstance(value, str):
        raise MalformedPayloadError(key, "must be a string")
    return value.strip()


def required_text(payload: Mapping[str, Any], key: str) -> str:
    """Like :func:`text` but never ``None``."""
    value = text(payload, key, required=True)
    assert value is not None
    return value


def integer(payload: Mapping[str, Any], key: str, *, default: int | None = None) -> int:
    """An integer field: a JSON integer, an integral decimal, or a string of digits."""
    value = payload.get(key)
    if value is None or value == "":
        if default is not None:
            return default
        raise MalformedPayloadError(key, "is missing")
    if isinstance(value, bool):
        raise MalformedPayloadError(key, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and _INTEGER_RE.match(value.strip()):
        return int(value.strip())
    raise MalformedPayloadError(key, f"must be an integer, got {value!r}")


def decimal(payload: Mapping[str, Any], key: str) -> Decimal | None:
    """A number field as ``Decimal`` (``None`` when absent or null)."""
    value = payload.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedPayloadError(key, "must be a number")
    try:
        if isinstance(value, float):
            # Only when the caller parsed without Decimal: str() gives the shortest repr.
            number = Decimal(str(value))
        elif isinstance(value, int | Decimal | str):
            number = Decimal(value)
        else:
            raise MalformedPayloadError(key, "must be a number")
    except InvalidOperation as exc:
        raise MalformedPayloadError(key, f"must be a number, got {value!r}") from exc
    if not number.is_finite():
        raise MalformedPayloadError(key, "must be a finite number")
    return number


def fill_price(payload: Mapping[str, Any], key: str, filled: int) -> Decimal | None:
    """The cumulative average price: ``None`` when nothing is filled (brokers then send 0/null).

    A missing average with fills is malformed; a zero or negative one is left for
    :class:`ExecutionReport` to refuse as an impossible report.
    """
    price = decimal(payload, key)
    if filled <= 0:
        return None
    if price is None:
        raise MalformedPayloadError(key, "is missing although the order has fills")
    return price


def timestamp(
    payload: Mapping[str, Any], *keys: str, naive_zone: timezone | None = IST
) -> datetime:
    """The first present timestamp among ``keys``; naive values are taken in ``naive_zone``.

    Accepts ``"2021-05-31 09:18:57"`` (Kite, Upstox, Dhan: IST without offset) and ISO-8601
    with or without an offset; ``naive_zone=None`` refuses values without an offset. Years
    before 2000 count as absent: some APIs fill unknown times with ``0001-01-01 00:00:00``.
    """
    for key in keys:
        raw = payload.get(key)
        if raw is None or raw == "":
            continue
        if not isinstance(raw, str):
            raise MalformedPayloadError(key, "must be a timestamp string")
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError as exc:
            raise MalformedPayloadError(key, f"not a timestamp: {raw!r}") from exc
        if value.year < 2000:
            continue
        if value.utcoffset() is None:
            if naive_zone is None:
                raise MalformedPayloadError(key, "must be ISO-8601 with a UTC offset")
            value = value.replace(tzinfo=naive_zone)
        return value
    raise MalformedPayloadError(keys[0], "is missing")


def side(payload: Mapping[str, Any], key: str) -> Side:
    """``BUY`` / ``SELL`` (any case)."""
    raw = required_text(payload, key).upper()
    try:
        return Side(raw)
    except ValueError as exc:
        raise MalformedPayloadError(key, f"must be BUY or SELL, got {raw!r}") from exc


def exchange(payload: Mapping[str, Any], key: str) -> Exchange:
    """``NSE``/``BSE`` or the segment forms ``NSE_EQ``/``BSE_EQ``; anything else is unsupported."""
    raw = required_text(payload, key).upper()
    name = raw.removesuffix("_EQ")
    try:
        return Exchange(name)
    except ValueError as exc:
        raise UnsupportedPayloadError(
            key, f"{raw!r} is not an NSE/BSE cash segment this router trades"
        ) from exc


def symbol(payload: Mapping[str, Any], *keys: str) -> str:
    """The trading symbol, upper case, with the NSE equity series suffix ``-EQ`` removed.

    Upstox spells NSE equities ``NHPC-EQ`` while Kite says ``NHPC``; other series (``-BE``,
    ``-BZ``) are different order books and are kept.
    """
    raw: str | None = None
    key = keys[0]
    for key in keys:
        raw = text(payload, key, required=False)
        if raw is not None:
            break
    if raw is None:
        raise MalformedPayloadError(keys[0], "is missing")
    value = raw.upper().removesuffix(_EQUITY_SERIES_SUFFIX)
    if not _SYMBOL_RE.match(value):
        raise MalformedPayloadError(key, f"{raw!r} is not an NSE/BSE trading symbol")
    return value


def phase(raw: str, key: str, table: Mapping[str, Phase]) -> Phase:
    """Look a broker's status label up in its table; unknown labels are malformed."""
    try:
        return table[raw]
    except KeyError:
        raise MalformedPayloadError(key, f"unknown status {raw!r}") from None


def status_for(phase_: Phase, quantity: int, filled: int) -> ExecutionStatus:
    """Refine a broker phase with the quantities, which are the more reliable signal.

    A working order with fills is ``PARTIALLY_FILLED`` (Upstox keeps ``open`` while partially
    filled, Kite says ``UPDATE``); a cancellation or rejection after full fills is ``FILLED``;
    a rejection after partial fills keeps them as ``CANCELLED`` (the rest was refused).
    """
    if phase_ is Phase.DONE:
        return ExecutionStatus.FILLED
    if 0 < quantity <= filled:
        return ExecutionStatus.FILLED
    if phase_ is Phase.CANCELLED:
        return ExecutionStatus.CANCELLED
    if phase_ is Phase.REJECTED:
        return ExecutionStatus.CANCELLED if filled > 0 else ExecutionStatus.REJECTED
    return ExecutionStatus.PARTIALLY_FILLED if filled > 0 else ExecutionStatus.OPEN


def build_report(fields: Mapping[str, Any], source_fields: Mapping[str, str]) -> ExecutionReport:
    """Build the report, turning pydantic's structural errors into malformed ones.

    Parameters
    ----------
    fields
        The report's fields, read from the payload.
    source_fields
        Report field name -> the broker's field it came from, so the error names what the
        sender sent (an id longer than the column, say).

    Returns
    -------
    ExecutionReport

    Raises
    ------
    MalformedPayloadError
        A field of the wrong shape (400).
    ImpossibleReportError
        Well-formed figures that contradict each other (filled more than ordered, a zero
        price); it carries the unchecked report so the caller can quarantine it.
    """
    try:
        return ExecutionReport(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        raise MalformedPayloadError(source_fields.get(name, name), first["msg"]) from exc
    except InvalidExecutionReportError as exc:
        raise ImpossibleReportError(
            exc.field, exc.reason, ExecutionReport.model_construct(**fields)
        ) from exc


@dataclass(frozen=True, slots=True)
class FillState:
    """Status and cumulative quantities of an update, read the same way for every broker."""

    raw_status: str
    status: ExecutionStatus
    quantity: int
    filled: int
    average_price: Decimal | None


def fill_state(
    payload: Mapping[str, Any],
    *,
    table: Mapping[str, Phase],
    status_key: str,
    quantity_key: str,
    filled_key: str,
    average_key: str,
    upper_case: bool,
    done_means_filled: bool = False,
) -> FillState:
    """Read a broker's status label and cumulative fill, and refine the status by quantities.

    Parameters
    ----------
    payload
        The decoded body.
    table
        The broker's status labels.
    status_key, quantity_key, filled_key, average_key
        The broker's names of those fields.
    upper_case
        Whether the broker's labels are upper case (Kite, Dhan) or lower case (Upstox).
    done_means_filled
        A broker that may omit the filled quantity (Dhan) reports a finished order as filled.
    """
    raw = required_text(payload, status_key)
    raw = raw.upper() if upper_case else raw.lower()
    phase_ = phase(raw, status_key, table)
    quantity = integer(payload, quantity_key)
    default = quantity if done_means_filled and phase_ is Phase.DONE else 0
    filled = integer(payload, filled_key, default=default)
    return FillState(
        raw_status=raw,
        status=status_for(phase_, quantity, filled),
        quantity=quantity,
        filled=filled,
        average_price=fill_price(payload, average_key, filled),
    )


# Report field -> field in a Kite-shaped body, so a structural error names what was sent.
KITE_SHAPED_FIELDS = {
    "broker_order_id": "order_id",
    "child_order_id": "tag",
    "exchange_order_id": "exchange_order_id",
    "status_message": "status_message",
}


def kite_shaped_report(
    payload: Mapping[str, Any],
    *,
    broker_id: str,
    table: Mapping[str, Phase],
    upper_case: bool,
    symbol_keys: Sequence[str],
    time_keys: Sequence[str],
) -> ExecutionReport:
    """A report from an order update shaped like Kite's (Kite itself, and Upstox after it).

    Both use ``order_id``, ``tag``, ``exchange_order_id``, ``status``, ``quantity``,
    ``filled_quantity``, ``average_price``, ``exchange``, ``transaction_type`` and
    ``status_message``; they differ in the status labels, the symbol and the timestamp fields.
    """
    state = fill_state(
        payload,
        table=table,
        status_key="status",
        quantity_key="quantity",
        filled_key="filled_quantity",
        average_key="average_price",
        upper_case=upper_case,
    )
    return build_report(
        dict(
            broker_id=broker_id,
            broker_order_id=required_text(payload, "order_id"),
            child_order_id=text(payload, "tag", required=False),
            exchange_order_id=text(payload, "exchange_order_id", required=False),
            status=state.status,
            quantity=state.quantity,
            filled_quantity=state.filled,
            average_price=state.average_price,
            symbol=symbol(payload, *symbol_keys),
            exchange=exchange(payload, "exchange"),
            side=side(payload, "transaction_type"),
            event_time=timestamp(payload, *time_keys),
            status_message=text(payload, "status_message", required=False),
        ),
        KITE_SHAPED_FIELDS,
    )
