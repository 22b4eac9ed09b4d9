"""tally.core.calendar: the conformance cases, and properties of any window in any zone."""

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.core.calendar import MAX_BUCKETS, CalendarError, Granularity, buckets, zone

SHARED = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "series-buckets.json"
VENDORED = Path(__file__).resolve().parents[1] / "usage" / "data" / "series-buckets.json"
CASES_PATH = SHARED if SHARED.exists() else VENDORED
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text())["cases"]
ZONES = (
    "UTC",
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "America/Havana",  # falls back from 01:00 to midnight: midnight happens twice
    "America/Santiago",  # springs forward at midnight: midnight never happens
    "Asia/Kathmandu",
)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_the_vendored_copy_matches_the_shared_cases() -> None:
    if SHARED.exists():
        assert json.loads(VENDORED.read_text()) == json.loads(SHARED.read_text())


@pytest.mark.parametrize("case", CASES, ids=[case["why"] for case in CASES])
def test_conformance(case: dict[str, Any]) -> None:
    got = buckets(
        _instant(case["start"]),
        _instant(case["end"]),
        Granularity(case["granularity"]),
        zone(case["timeZone"]),
    )
    expected = [(_instant(b["start"]), _instant(b["end"])) for b in case["buckets"]]
    assert [(b.start, b.end) for b in got] == expected


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "a" * 80])
def test_unknown_zones_name_time_zone(name: str) -> None:
    with pytest.raises(CalendarError) as caught:
        zone(name)
    assert caught.value.field == "timeZone"


def test_more_than_a_thousand_buckets_names_granularity() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    exactly = buckets(start, start + timedelta(hours=MAX_BUCKETS), Granularity.HOUR, zone("UTC"))
    assert len(exactly) == MAX_BUCKETS
    with pytest.raises(CalendarError) as caught:
        buckets(start, start + timedelta(hours=MAX_BUCKETS + 1), Granularity.HOUR, zone("UTC"))
    assert caught.value.field == "granularity"


def test_a_century_of_hours_is_refused_at_once() -> None:
    start = datetime(1900, 1, 1, tzinfo=UTC)
    with pytest.raises(CalendarError):
        buckets(start, datetime(9999, 1, 1, tzinfo=UTC), Granularity.HOUR, zone("UTC"))


def test_the_ends_of_the_calendar() -> None:
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    got = buckets(datetime(9999, 12, 1, tzinfo=UTC), last, Granularity.MONTH, zone("UTC"))
    assert [(b.start, b.end) for b in got] == [(datetime(9999, 12, 1, tzinfo=UTC), last)]
    with pytest.raises(CalendarError) as caught:
        buckets(
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(1, 1, 2, tzinfo=UTC),
            Granularity.DAY,
            zone("America/St_Johns"),
        )
    assert caught.value.field == "timeZone"


def test_a_25_hour_day_has_25_hours() -> None:
    berlin = zone("Europe/Berlin")
    day = buckets(
        datetime(2027, 10, 30, 22, tzinfo=UTC),
        datetime(2027, 10, 31, 23, tzinfo=UTC),
        Granularity.HOUR,
        berlin,
    )
    assert len(day) == 25
    assert all(b.end - b.start == timedelta(hours=1) for b in day)


def test_a_skipped_midnight_starts_the_day_at_the_jump() -> None:
    santiago = zone("America/Santiago")
    # 2026-09-06 00:00 -04 jumps to 01:00 -03: the day begins at 04:00Z.
    got = buckets(
        datetime(2026, 9, 5, 12, tzinfo=UTC),
        datetime(2026, 9, 7, 12, tzinfo=UTC),
        Granularity.DAY,
        santiago,
    )
    assert [b.start for b in got][1:] == [
        datetime(2026, 9, 6, 4, tzinfo=UTC),
        datetime(2026, 9, 7, 3, tzinfo=UTC),
    ]


# --- properties: independent of the code's construction ---------------------------------


def _key(moment: datetime, tz: ZoneInfo, granularity: Granularity) -> tuple[int, ...]:
    """Which local bucket an instant falls in (its wall time truncated)."""
    local = moment.astimezone(tz)
    if granularity is Granularity.HOUR:
        return (local.year, local.month, local.day, local.hour)
    if granularity is Granularity.DAY:
        return (local.year, local.month, local.day)
    if granularity is Granularity.WEEK:
        return tuple(local.date().isocalendar()[:2])
    return (local.year, local.month)


INSTANTS = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=datetime(2030, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
SPANS = {
    Granularity.HOUR: timedelta(days=5),
    Granularity.DAY: timedelta(days=90),
    Granularity.WEEK: timedelta(days=400),
    Granularity.MONTH: timedelta(days=3000),
}


@settings(max_examples=300, deadline=None)
@given(
    start=INSTANTS,
    length=st.floats(0.0001, 1.0),
    granularity=st.sampled_from(list(Granularity)),
    name=st.sampled_from(ZONES),
)
def test_buckets_tile_the_window_and_split_only_where_the_calendar_does(
    start: datetime, length: float, granularity: Granularity, name: str
) -> None:
    tz = zone(name)
    end = start + max(timedelta(microseconds=1), SPANS[granularity] * length)
    got = buckets(start, end, granularity, tz)
    assert got[0].start == start
    assert got[-1].end == end
    for before, after in pairwise(got):
        assert before.end == after.start
    for bucket in got:
        assert bucket.start < bucket.end
        # One local bucket each: its first and last instants have the same wall-time key.
        last = bucket.end - timedelta(microseconds=1)
        assert _key(bucket.start, tz, granularity) == _key(last, tz, granularity)
    for after in got[1:]:
        boundary = after.start
        changed = _key(boundary - timedelta(microseconds=1), tz, granularity) != _key(
            boundary, tz, granularity
        )
        local = boundary.astimezone(tz)
        on_the_hour = (local.minute, local.second, local.microsecond) == (0, 0, 0)
        assert changed or (granularity is Granularity.HOUR and on_the_hour)
