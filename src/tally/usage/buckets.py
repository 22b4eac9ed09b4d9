"""Running totals by hour, day and month: the shape that makes any window cheap.

For each company and cost key ("pair") tally keeps, at each granularity, one
row per UTC bucket that had activity, holding the running total *within the
enclosing period* through the end of that bucket:

- month rows: the total of all months up to and including this one;
- day rows: the total from the start of the day's month through this day;
- hour rows: the total from the start of the hour's day through this hour.

The total of every counted event before an hour-aligned instant t is then
the latest month row before t's month, plus the latest day row of t's month
before t's day, plus the latest hour row of t's day before t: three index
seeks. A window [start, end) is cum(b) - cum(a) for a = start rounded up and
b = end rounded down to the hour, plus the raw events of the two partial
hours at its edges. So a query costs six seeks per pair and two short range
scans, whatever the history size or the window length.

An event at instant x adds its amounts to the row of x's bucket and to every
later row of the same period at each granularity (later hours of the same
day, later days of the same month, later months): usually none, since events
mostly arrive in time order; at most 23 + 30 + the months of history for a
late event.
"""

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
# Bounds standing for "all history" in the month level's period.
BEGINNING = -(2**62)
FOREVER = 2**62


def floor_hour(micros: int) -> int:
    return micros - micros % MICROS_PER_HOUR


def floor_day(micros: int) -> int:
    return micros - micros % MICROS_PER_DAY


def floor_month(micros: int) -> int:
    return to_micros(start_of_month(from_micros(micros)))


def add_month(micros: int) -> int:
    return to_micros(next_month(from_micros(micros)))


def ceil_hour(micros: int) -> int:
    floor = floor_hour(micros)
    return micros if floor == micros else floor + MICROS_PER_HOUR


def period(granularity: int, start: int) -> tuple[int, int]:
    """The period [low, high) whose running total a bucket row carries."""
    if granularity == HOUR:
        day = floor_day(start)
        return day, day + MICROS_PER_DAY
    if granularity == DAY:
        month = floor_month(start)
        return month, add_month(month)
    return BEGINNING, FOREVER


def prefix_lookups(instant: int) -> tuple[tuple[int, int, int], ...]:
    """(granularity, low, high): the latest row in [low, high) at each level
    sums, over the three levels, to every counted event before `instant`
    (which must be hour-aligned)."""
    month = floor_month(instant)
    day = floor_day(instant)
    return ((MONTH, BEGINNING, month), (DAY, month, day), (HOUR, day, instant))


def split(start: int, end: int) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """Raw edges of [start, end) and its hour-aligned middle, if any."""
    low, high = ceil_hour(start), floor_hour(end)
    if low >= high:
        return [(start, end)], None
    edges = [(a, b) for a, b in ((start, low), (high, end)) if a < b]
    return edges, (low, high)
