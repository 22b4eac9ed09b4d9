"""Billing periods: local midnight on the anchor day, against a brute-force reference."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.plans.periods import current_window

ZONES = [
    "UTC",
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "America/Los_Angeles",
]


def reference(
    period: str, day: int, month: int, zone: str, now: datetime
) -> tuple[datetime, datetime]:
    """Every candidate start near now, the latest one not after now, and its successor."""
    tz = ZoneInfo(zone)
    starts = []
    for year in range(now.year - 2, now.year + 3):
        for m in range(1, 13):
            if period == "year" and m != month:
                continue
            starts.append(datetime(year, m, day, tzinfo=tz).astimezone(UTC))
    starts.sort()
    index = max(i for i, start in enumerate(starts) if start <= now)
    return starts[index], starts[index + 1]


@settings(max_examples=300, deadline=None)
@given(
    period=st.sampled_from(["month", "year"]),
    day=st.integers(1, 28),
    month=st.integers(1, 12),
    zone=st.sampled_from(ZONES),
    now=st.datetimes(
        min_value=datetime(2001, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2098, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_the_period_contains_now_and_matches_the_reference(period, day, month, zone, now):
    window = current_window(period, day, month, zone, now)
    assert window.start <= now < window.end
    assert (window.start, window.end) == reference(period, day, month, zone, now)
    local = window.start.astimezone(ZoneInfo(zone))
    assert (local.day, local.hour, local.minute) == (day, 0, 0)


def test_anchor_28_in_february_runs_to_march_28():
    now = datetime(2027, 2, 27, 12, tzinfo=UTC)
    window = current_window("month", 28, 1, "UTC", now)
    assert window.start == datetime(2027, 1, 28, tzinfo=UTC)
    assert window.end == datetime(2027, 2, 28, tzinfo=UTC)
    window = current_window("month", 28, 1, "UTC", datetime(2027, 2, 28, tzinfo=UTC))
    assert (window.start, window.end) == (
        datetime(2027, 2, 28, tzinfo=UTC),
        datetime(2027, 3, 28, tzinfo=UTC),
    )


def test_the_zone_moves_the_boundary():
    # 2026-11-14T23:00Z is already the 15th in Berlin (UTC+1 in November).
    now = datetime(2026, 11, 14, 23, 30, tzinfo=UTC)
    assert current_window("month", 15, 1, "UTC", now).start == datetime(2026, 10, 15, tzinfo=UTC)
    berlin = current_window("month", 15, 1, "Europe/Berlin", now)
    assert berlin.start == datetime(2026, 11, 14, 23, tzinfo=UTC)
    assert berlin.end == datetime(2026, 12, 14, 23, tzinfo=UTC)
    kolkata = current_window("month", 1, 1, "Asia/Kolkata", datetime(2026, 3, 31, 19, tzinfo=UTC))
    assert kolkata.start == datetime(2026, 3, 31, 18, 30, tzinfo=UTC)


def test_a_period_across_daylight_saving_is_an_hour_short():
    window = current_window("month", 1, 1, "Europe/Berlin", datetime(2026, 3, 15, tzinfo=UTC))
    assert window.end - window.start == timedelta(days=31, hours=-1)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (
            datetime(2026, 11, 30, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
            datetime(2027, 4, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 3, 31, 23, tzinfo=UTC),
            datetime(2025, 4, 1, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 4, 1, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
            datetime(2027, 4, 1, tzinfo=UTC),
        ),
    ],
)
def test_yearly_periods_start_in_the_anchor_month(now, start, end):
    window = current_window("year", 1, 4, "UTC", now)
    assert (window.start, window.end) == (start, end)
