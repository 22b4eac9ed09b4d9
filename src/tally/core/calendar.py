"""Bucket boundaries on the calendar of any IANA time zone (pure; zoneinfo only).

A bucket is the set of instants whose local wall time falls in one hour, day,
week (from Monday) or month of the zone. Its start is the first instant at
which the wall clock reaches the bucket's aligned wall time (:00, midnight,
Monday midnight, the 1st at midnight). Two cases make that more than
"convert local midnight to UTC":

- a gap (the clock jumps forward past the aligned wall time, e.g. 02:00 ->
  02:30 on Lord Howe Island, or midnight skipped in some zones): the bucket
  starts at the jump, the first instant that shows a later wall time;
- a fold (the clock falls back and an aligned wall time happens twice): for
  hours both occurrences start a bucket (a 25-hour day has 25 hourly
  buckets); for days, weeks and months only the first does (the date does not
  change when midnight repeats).

Buckets are clipped to [start, end): the first starts at `start`, the last
ends at `end`, and every bucket in between is present.
"""

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_BUCKETS = 1000
_MICRO = timedelta(microseconds=1)


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class CalendarError(ValueError):
    """A window, zone or granularity the calendar cannot divide; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Bucket:
    """One bucket [start, end) in UTC."""

    start: datetime
    end: datetime


def zone(name: str) -> ZoneInfo:
    """The IANA zone of this name; CalendarError naming `timeZone` if there is none."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise CalendarError("timeZone", "must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CalendarError(
            "timeZone", "must be an IANA time zone name such as Europe/Berlin"
        ) from exc


def _floor(wall: datetime, granularity: Granularity) -> datetime:
    """The aligned naive wall time that begins the bucket holding `wall`."""
    if granularity is Granularity.HOUR:
        return wall.replace(minute=0, second=0, microsecond=0)
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return midnight
    if granularity is Granularity.WEEK:
        return midnight - timedelta(days=midnight.weekday())
    return midnight.replace(day=1)


def _advance(wall: datetime, granularity: Granularity) -> datetime:
    """The next aligned naive wall time (OverflowError past year 9999)."""
    if granularity is Granularity.HOUR:
        return wall + timedelta(hours=1)
    if granularity is Granularity.DAY:
        return wall + timedelta(days=1)
    if granularity is Granularity.WEEK:
        return wall + timedelta(days=7)
    if wall.month == 12:
        if wall.year == 9999:
            raise OverflowError("past year 9999")
        return wall.replace(year=wall.year + 1, month=1)
    return wall.replace(month=wall.month + 1)


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _utc(wall: datetime, tz: ZoneInfo, fold: int) -> datetime:
    return wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _first_reaching(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall time is at or after `wall`.

    If `wall` exists, that is its first occurrence. If it falls in a gap, it
    is the jump: found by bisection between the two readings zoneinfo gives
    a skipped wall time (with the offsets before and after the jump).
    """
    first = _utc(wall, tz, 0)
    if _wall(first, tz) == wall:
        other = _utc(wall, tz, 1)
        return min(first, other) if _wall(other, tz) == wall else first
    low, high = sorted((first, _utc(wall, tz, 1)))
    # Invariant: wall(low) < wall <= wall(high).
    while high - low > _MICRO:
        middle = low + (high - low) / 2
        if _wall(middle, tz) >= wall:
            high = middle
        else:
            low = middle
    return high


def _next_boundary(moment: datetime, tz: ZoneInfo, granularity: Granularity) -> datetime | None:
    """The first bucket start after `moment`, or None past the end of the calendar."""
    wall = _wall(moment, tz)
    key = _floor(wall, granularity)
    candidates = []
    if granularity is Granularity.HOUR:
        # The second occurrence of this hour's :00 in a fold starts a bucket too.
        repeat = _utc(key, tz, 1)
        if repeat > moment and _wall(repeat, tz) == key:
            candidates.append(repeat)
    with suppress(OverflowError):
        candidates.append(_first_reaching(_advance(key, granularity), tz))
    return min(candidates) if candidates else None


def buckets(
    start: datetime,
    end: datetime,
    granularity: Granularity,
    tz: ZoneInfo,
    limit: int = MAX_BUCKETS,
) -> list[Bucket]:
    """The buckets of [start, end) (aware datetimes), clipped, in time order.

    More than `limit` buckets: CalendarError naming `granularity`. A window
    whose local time lies outside years 1-9999: CalendarError naming `timeZone`.
    """
    result: list[Bucket] = []
    moment = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while moment < end:
        if len(result) == limit:
            raise CalendarError(
                "granularity",
                f"more than {limit} buckets in the window; choose a coarser granularity",
            )
        try:
            boundary = _next_boundary(moment, tz, granularity)
        except OverflowError as exc:
            raise CalendarError(
                "timeZone", "the window lies outside the calendar in this time zone"
            ) from exc
        stop = end if boundary is None else min(boundary, end)
        result.append(Bucket(moment, stop))
        moment = stop
    return result
