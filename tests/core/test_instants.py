"""Instants at the edges of the calendar: never an OverflowError, always InstantError."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tally.core.instants import (
    OUT_OF_RANGE,
    InstantError,
    UtcInstant,
    from_micros,
    parse_instant,
    to_micros,
    to_utc,
)


class Body(BaseModel):
    at: UtcInstant


OVERFLOWING = [
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:00:00-01:00",
]


@pytest.mark.parametrize("text", OVERFLOWING)
def test_offsets_that_leave_the_calendar_are_refused(text: str) -> None:
    for require_offset in (True, False):
        with pytest.raises(InstantError, match="must lie between"):
            parse_instant(text, require_offset=require_offset)
    with pytest.raises(ValidationError) as caught:
        Body(at=text)
    (error,) = caught.value.errors()
    assert error["loc"] == ("at",)
    assert OUT_OF_RANGE in error["msg"]


def test_a_datetime_object_that_overflows_is_refused_too() -> None:
    moment = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23)))
    with pytest.raises(InstantError):
        to_utc(moment)
    with pytest.raises(ValidationError):
        Body(at=moment)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T00:01:00+00:01", datetime(1, 1, 1, tzinfo=UTC)),
        ("2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T10:00:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_the_edges_themselves_are_accepted(text: str, expected: datetime) -> None:
    assert Body(at=text).at == expected
    assert from_micros(to_micros(expected)) == expected


@given(
    st.datetimes(),  # naive, years 1 to 9999
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
def test_any_offset_is_utc_or_a_clean_error(local: datetime, offset_minutes: int) -> None:
    moment = local.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    try:
        expected = moment.astimezone(UTC)
    except OverflowError:
        with pytest.raises(ValidationError):
            Body(at=moment.isoformat())
        return
    assert Body(at=moment.isoformat()).at == expected
    assert Body(at=moment).at == expected
