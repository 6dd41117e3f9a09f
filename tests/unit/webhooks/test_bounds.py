"""parse_json_body bounds a body's size, depth and integers before the JSON parser runs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.adapters.brokers.webhooks import MalformedPayloadError, parse_json_body
from shared.adapters.brokers.webhooks._parsing import (
    MAX_BODY_BYTES,
    MAX_INTEGER_DIGITS,
    MAX_JSON_DEPTH,
)


def deep(levels: int) -> bytes:
    return b'{"a": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


def test_depth_up_to_the_bound_parses_and_one_more_is_refused() -> None:
    # GIVEN bodies exactly at the depth bound and one level deeper
    # WHEN parsed THEN the first parses and the second names the body
    assert parse_json_body(deep(MAX_JSON_DEPTH))["a"] is not None
    with pytest.raises(MalformedPayloadError, match="nested deeper") as refused:
        parse_json_body(deep(MAX_JSON_DEPTH + 1))
    assert refused.value.field == "body"


def test_a_million_levels_are_refused_without_recursion() -> None:
    # GIVEN a body of half a million opening brackets (within no parser's stack)
    # WHEN parsed THEN it is refused as too large or too deep, never a RecursionError
    with pytest.raises(MalformedPayloadError):
        parse_json_body(b"[" * 500_000)
    with pytest.raises(MalformedPayloadError, match="nested deeper"):
        parse_json_body(b"[" * (MAX_BODY_BYTES - 1))


def test_brackets_and_escaped_quotes_inside_strings_do_not_count() -> None:
    # GIVEN strings full of brackets and escaped quotes, at depth 1
    raw = b'{"a": "[[[[{{{{", "b": "\\"[[[[\\"", "c": "\\\\"}'
    # WHEN parsed THEN the strings come back intact
    assert parse_json_body(raw) == {"a": "[[[[{{{{", "b": '"[[[["', "c": "\\"}


def test_size_and_integer_bounds() -> None:
    # GIVEN a body over the size bound, an integer over the digit bound and one at it
    too_big = b'{"a": "' + b"x" * MAX_BODY_BYTES + b'"}'
    too_long = b'{"q": ' + b"9" * (MAX_INTEGER_DIGITS + 1) + b"}"
    at_bound = b'{"q": -' + b"9" * MAX_INTEGER_DIGITS + b', "p": 1e400}'
    # WHEN parsed THEN the first two name the body and the last keeps its exact values
    for raw in (too_big, too_long):
        with pytest.raises(MalformedPayloadError) as refused:
            parse_json_body(raw)
        assert refused.value.field == "body"
    parsed = parse_json_body(at_bound)
    assert parsed == {"q": -int("9" * MAX_INTEGER_DIGITS), "p": Decimal("1e400")}


@pytest.mark.parametrize(
    "raw", [b"\xa5", b'{"a": "\xed\xa0\x80"}', "\ud800".encode("utf-8", "surrogatepass")]
)
def test_bytes_that_are_not_utf8_name_the_body(raw: bytes) -> None:
    # GIVEN bytes that are not UTF-8 WHEN parsed THEN the error names the body
    with pytest.raises(MalformedPayloadError, match="not UTF-8"):
        parse_json_body(raw)
