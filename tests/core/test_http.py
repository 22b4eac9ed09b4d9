"""Request parsing: UTF-8 JSON with exact numbers and unique keys, content types."""

import json
from decimal import Decimal
from typing import Any

import pytest
import simplejson
from hypothesis import given
from hypothesis import strategies as st

from tally.core.http import check_json_content_type, parse_json
from tally.errors import UnsupportedMediaType, ValidationFailed

KEYS = st.text(max_size=6)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


def _encode(value: Any) -> bytes:
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False).encode("utf-8")


def _same(left: Any, right: Any) -> bool:
    """Equal, and numbers equal as exact decimals (never through float)."""
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(_same(left[key], right[key]) for key in left)
        )
    if isinstance(left, list):
        return (
            isinstance(right, list)
            and len(left) == len(right)
            and all(_same(a, b) for a, b in zip(left, right, strict=True))
        )
    if isinstance(left, Decimal):
        return isinstance(right, Decimal | int) and Decimal(right) == left
    return type(left) is type(right) and left == right


@given(VALUES)
def test_any_json_value_round_trips_exactly(value: Any) -> None:
    assert _same(value, parse_json(_encode(value)))


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=4), st.data())
def test_a_repeated_key_anywhere_is_refused(obj: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    text = _encode(obj).decode()
    # The same key again at the end of the object: json.loads would keep the last.
    repeated = text[:-1] + ", " + json.dumps(key) + ": 1}"
    nested = '{"outer": [' + repeated + "]}"
    for body in (repeated, nested):
        with pytest.raises(ValidationFailed) as caught:
            parse_json(body.encode())
        assert caught.value.details == {
            "errors": [{"field": key, "message": "appears more than once in an object"}]
        }


def test_numbers_are_exact_decimals() -> None:
    parsed = parse_json(b'{"a": 2.00000000000000001, "b": 1e-999999999, "c": 1e999999, "d": 7}')
    assert parsed["a"] == Decimal("2.00000000000000001")
    assert parsed["b"] == Decimal("1e-999999999")
    assert parsed["c"] == Decimal("1e999999")
    assert parsed["d"] == 7


@pytest.mark.parametrize(
    "raw",
    [
        '{"a": 1}'.encode("utf-16"),
        '{"a": 1}'.encode("utf-16-le"),
        '{"a": 1}'.encode("utf-32"),
        b'{"a": "\xff"}',
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"",
        b"{",
        b"[" * 100_000,
    ],
)
def test_bodies_that_are_not_utf8_json_are_refused(raw: bytes) -> None:
    with pytest.raises(ValidationFailed):
        parse_json(raw)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        'application/json; charset="UTF-8"',
    ],
)
def test_json_content_types(content_type: str) -> None:
    check_json_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/json; charset=utf-16",
        "application/jsonx",
        "text/json",
    ],
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        check_json_content_type(content_type)
    assert caught.value.status == 415
    assert caught.value.code == "UNSUPPORTED_MEDIA_TYPE"
