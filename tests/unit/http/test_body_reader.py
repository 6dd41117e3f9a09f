"""The JSON body reader: each refusal and its status, and what passes unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.http import (
    MAX_JSON_DEPTH,
    RejectedRequestError,
    nesting_exceeds,
    read_json_object,
    unsupported_media_type,
)


@pytest.mark.parametrize(
    ("text", "limit", "deep"),
    [
        ("[" * 3 + "]" * 3, 3, False),
        ("[" * 4 + "]" * 4, 3, True),
        ('{"a": "[[[[[[", "b": "\\"[[[["}', 1, False),
        ('{"a": {"b": {"c": 1}}}', 2, True),
        ("[" * 100_000, MAX_JSON_DEPTH, True),
    ],
    ids=["at-limit", "over", "brackets-in-strings", "objects", "unclosed-100k"],
)
def test_nesting_is_measured_without_recursion(text: str, limit: int, deep: bool) -> None:
    # GIVEN JSON text; WHEN its depth is measured; THEN only real nesting counts
    assert nesting_exceeds(text, limit) is deep


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ('application/json; charset="UTF8"', True),
        ("application/json; charset=iso-8859-1", False),
        ("application/jsonx", False),
        ("multipart/form-data", False),
        (None, False),
    ],
)
def test_only_json_in_utf8_is_a_supported_media_type(content_type: str | None, ok: bool) -> None:
    # GIVEN a Content-Type; THEN it is refused (415) unless it is JSON in UTF-8
    refused = unsupported_media_type(content_type)
    assert (refused is None) is ok
    if refused is not None:
        assert refused.status == 415


def test_an_object_is_returned_with_decimal_numbers() -> None:
    # GIVEN an order with a float-looking price and an integer quantity
    value = read_json_object(b'{"quantity": 10, "limitPrice": 1290.05}', "application/json")
    # THEN integers stay integers and fractions are exact decimals
    assert value == {"quantity": 10, "limitPrice": Decimal("1290.05")}
    assert isinstance(value["limitPrice"], Decimal)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"x" * 20, 413, "PAYLOAD_TOO_LARGE"),
        (b"\xa5", 400, "MALFORMED_BODY"),
        (b"[[[[[[]]]]]]", 400, "BODY_TOO_DEEP"),
        (b"{", 400, "MALFORMED_JSON"),
        (b"-Infinity", 400, "MALFORMED_JSON"),
        (b"[1]", 422, "VALIDATION_FAILED"),
        (b"null", 422, "VALIDATION_FAILED"),
    ],
)
def test_each_refusal_has_its_status(body: bytes, status: int, code: str) -> None:
    # GIVEN a body breaking one rule (16-byte size and depth-5 bounds for brevity)
    # WHEN it is read; THEN the refusal names its status and code
    with pytest.raises(RejectedRequestError) as refused:
        read_json_object(body, "application/json", max_bytes=16, max_depth=5)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert set(refused.value.body()) == {"error"}
