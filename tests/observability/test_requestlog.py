"""Request ids, key prefixes and the JSON line format, without a server."""

import json
import logging
import re
import string

from hypothesis import given
from hypothesis import strategies as st

from tally.auth.keys import generate_key
from tally.observability.requestlog import JsonFormatter, key_prefix, request_id_from

SAFE = string.ascii_letters + string.digits + "._:-"
GENERATED = re.compile(r"[0-9a-f]{32}")


@given(st.text(alphabet=SAFE, min_size=1, max_size=128))
def test_a_well_formed_request_id_is_kept(value: str) -> None:
    assert request_id_from(value.encode()) == value


@given(st.binary(max_size=300))
def test_any_other_request_id_is_replaced(raw: bytes) -> None:
    text = raw.decode("latin-1")
    kept = 1 <= len(text) <= 128 and all(character in SAFE for character in text)
    result = request_id_from(raw)
    if kept:
        assert result == text
    else:
        assert GENERATED.fullmatch(result)


def test_missing_request_ids_are_generated_and_unique() -> None:
    ids = {request_id_from(None) for _ in range(100)}
    assert len(ids) == 100
    assert all(GENERATED.fullmatch(value) for value in ids)


def test_key_prefix_is_the_lookup_id_only() -> None:
    key = generate_key()
    prefix = key_prefix(f"Bearer {key}".encode())
    assert prefix == key[:16]
    assert key[16:] not in (prefix or "")


@given(st.binary(max_size=120))
def test_key_prefix_of_anything_else_is_nothing_or_a_lookup_id(raw: bytes) -> None:
    prefix = key_prefix(raw)
    assert prefix is None or re.fullmatch(r"sk_(live|test)_[0-9A-Za-z]{8}", prefix)


def test_malformed_bearer_values_are_not_logged() -> None:
    assert key_prefix(b"Bearer sk_live_short") is None
    assert key_prefix(b"Basic dXNlcjpwYXNz") is None
    assert key_prefix(b"Bearer " + generate_key().encode() + b"x") is None


def _record(msg: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("tally.request", logging.INFO, __file__, 1, msg, None, None)
    record.fields = fields
    return record


def test_json_lines_are_one_line_with_the_fields() -> None:
    line = JsonFormatter().format(_record("request", requestId="r1", status=200, route="/x"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["requestId"] == "r1"
    assert parsed["status"] == 200
    assert parsed["level"] == "info"
    assert parsed["time"].endswith("Z")


def test_json_lines_never_carry_a_traceback_or_a_second_line() -> None:
    try:
        raise ValueError("SELECT secret FROM keys WHERE hash = 'abc'")
    except ValueError:
        record = logging.LogRecord(
            "asyncio",
            logging.ERROR,
            __file__,
            1,
            "first\nsecond",
            None,
            __import__("sys").exc_info(),
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "secret" not in line
    assert json.loads(line) | {"time": None} == {
        "time": None,
        "level": "error",
        "logger": "asyncio",
        "message": "first",
        "error": "ValueError",
    }
