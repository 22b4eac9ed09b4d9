"""UTC instants: parsing ISO 8601, formatting with Z, and integer microseconds.

Every instant tally stores is an integer count of microseconds since the Unix
epoch in UTC. The same integer compares, sums and buckets identically on SQLite
and PostgreSQL, and it carries microseconds exactly.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = 3600 * MICROS_PER_SECOND
MICROS_PER_DAY = 24 * MICROS_PER_HOUR


OUT_OF_RANGE = "must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"


class InstantError(ValueError):
    """A string that is not an instant tally accepts."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_micros(moment: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


_FRACTION = re.compile(r"[.,](\d+)")


def _check_fraction(text: str) -> None:
    # Finer than a microsecond would be truncated: refuse it instead of losing it.
    match = _FRACTION.search(text)
    if match is not None and len(match.group(1)) > 6:
        raise InstantError("at most 6 fractional digits (microseconds)")


def parse_instant(text: str, *, require_offset: bool) -> datetime:
    """Parse ISO 8601 into an aware UTC datetime.

    A date alone is midnight UTC and a time without offset is UTC, unless
    require_offset is set (event timestamps must say which instant they mean).
    """
    text = text.strip()
    # fromisoformat stops at a NUL ("...Z\x00garbage" parses): printable ASCII only.
    if not text or len(text) > 64 or not (text.isascii() and text.isprintable()):
        raise InstantError("expected an ISO 8601 date or date-time")
    if "." in text or "," in text:
        _check_fraction(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InstantError("expected an ISO 8601 date or date-time") from exc
    is_date_only = len(text) <= 10 and "T" not in text and ":" not in text
    if parsed.tzinfo is None:
        if require_offset:
            what = "a time and" if is_date_only else "an"
            raise InstantError(f"needs {what} offset such as Z or +02:00")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise InstantError(OUT_OF_RANGE) from exc


def format_instant(moment: datetime) -> str:
    """ISO 8601 in UTC with Z; fractional seconds only as long as needed."""
    moment = moment.astimezone(UTC)
    # strftime's %Y does not zero-pad years before 1000 on every platform.
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def start_of_month(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    return datetime(moment.year, moment.month + 1, 1, tzinfo=UTC)


def to_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; naive means UTC. InstantError when UTC has no such year."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59:59-23:59, 0001-01-01T00:00:00+00:01
        raise InstantError(OUT_OF_RANGE) from exc


def _parsed(value: Any) -> Any:
    if isinstance(value, str):
        return parse_instant(value, require_offset=False)
    return value


# A body field holding an instant (`expiresAt`, `effectiveFrom`): the formats of
# the query's `start`/`end`, always aware UTC once validated, and a 400 naming
# the field (never a 500) when the offset pushes it out of the years 1-9999.
UtcInstant = Annotated[datetime, BeforeValidator(_parsed), AfterValidator(to_utc)]
