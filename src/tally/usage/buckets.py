"""The bucket hierarchy: which hour, day and month an instant falls in, and how a
window [start, end) is covered by whole buckets plus raw edges.

Buckets are UTC and keyed by their start in epoch microseconds. Any window is
covered by at most two raw edges shorter than an hour, at most 46 hour
buckets, at most 60 day buckets and the whole months between, so a query
reads a bounded number of rows per company and cost key whatever the history
size or the window length.
"""

from dataclasses import dataclass, field
from typing import Any

from tally.core.instants import (
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    from_micros,
    next_month,
    start_of_month,
    to_micros,
)

HOUR = 0
DAY = 1
MONTH = 2
GRANULARITIES = (HOUR, DAY, MONTH)


def floor_hour(micros: int) -> int:
    return micros - micros % MICROS_PER_HOUR


def floor_day(micros: int) -> int:
    return micros - micros % MICROS_PER_DAY


def floor_month(micros: int) -> int:
    return to_micros(start_of_month(from_micros(micros)))


def _ceil(micros: int, floor: int, step_up: int) -> int:
    return micros if floor == micros else step_up


def ceil_hour(micros: int) -> int:
    floor = floor_hour(micros)
    return _ceil(micros, floor, floor + MICROS_PER_HOUR)


def ceil_day(micros: int) -> int:
    floor = floor_day(micros)
    return _ceil(micros, floor, floor + MICROS_PER_DAY)


def ceil_month(micros: int) -> int:
    floor = floor_month(micros)
    return _ceil(micros, floor, to_micros(next_month(from_micros(floor))))


def bucket_starts(micros: int) -> tuple[tuple[int, int], ...]:
    """(granularity, bucket start) of the hour, day and month holding an instant."""
    return ((HOUR, floor_hour(micros)), (DAY, floor_day(micros)), (MONTH, floor_month(micros)))


@dataclass
class Cover:
    """A window as raw ranges plus ranges of bucket starts, all half-open."""

    raw: list[tuple[int, int]] = field(default_factory=list)
    buckets: list[tuple[int, int, int]] = field(default_factory=list)


def _middle(ceil: int, floor: int) -> tuple[int, int] | None:
    """The aligned middle [ceil(start), floor(end)) if it is not empty."""
    return (ceil, floor) if ceil < floor else None


def cover(start: int, end: int) -> Cover:
    """Cover [start, end) (epoch microseconds) with the fewest rows to read."""
    result = Cover()
    hours = _middle(ceil_hour(start), floor_hour(end))
    if hours is None:
        result.raw.append((start, end))
        return result
    _edges(result.raw, None, (start, end), hours)
    days = _middle(ceil_day(hours[0]), floor_day(hours[1]))
    if days is None:
        result.buckets.append((HOUR, *hours))
        return result
    _edges(result.buckets, HOUR, hours, days)
    months = _middle(ceil_month(days[0]), floor_month(days[1]))
    if months is None:
        result.buckets.append((DAY, *days))
        return result
    _edges(result.buckets, DAY, days, months)
    result.buckets.append((MONTH, *months))
    return result


def _edges(
    into: list[Any], granularity: int | None, outer: tuple[int, int], inner: tuple[int, int]
) -> None:
    """Append the parts of outer left and right of inner, at this granularity."""
    for low, high in ((outer[0], inner[0]), (inner[1], outer[1])):
        if low < high:
            into.append((low, high) if granularity is None else (granularity, low, high))
