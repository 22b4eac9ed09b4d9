"""Usage of companies between consecutive instants t0 < t1 < ... < tN, from the running totals.

The total of counted events before any instant t is the running total at t's
UTC hour (three seeks, tally.usage.buckets), plus the changes of earlier hours
not yet folded into the totals (usage_deltas, tally.usage.fold), plus the raw
events in [floor_hour(t), t) when t is not a whole hour. A bucket [ti, ti+1) is the
difference of two such totals. All arithmetic is on integers (millionths),
so buckets add up to the window, to the last digit, by construction.

`series` gives each company's buckets; `scope_series` gives the buckets
summed over many companies per unit without computing each company's (the
top-level buckets of a platform's chart): from the unit's own running
totals (tally.usage.units) when the companies are all of the unit's, else
from the rows' changes summed over the companies (docs/series.md).
"""

import uuid
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import pairwise
from typing import TypeVar

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.instants import MICROS_PER_DAY, MICROS_PER_HOUR, to_micros
from tally.reporting import repository
from tally.reporting.results import CompanySeries, Sums, Usage
from tally.usage import fold, units
from tally.usage.buckets import (
    DAY,
    HOUR,
    MONTH,
    add_month,
    floor_day,
    floor_hour,
    floor_month,
    prefix_lookups,
)

# Up to this many distinct hours, a report's running totals are added up in
# SQL (repository.instant_sums) rather than read level by level and picked.
SUMMED_HOURS = 4
# Companies x instants held in memory at once; a report is computed chunk by chunk.
CELL_BUDGET = 2_500

# events, minutes, credits, interviews
Counters = tuple[int, ...]
# (company, cost key); None: interviews first counted, from raw events.
Pair = tuple[uuid.UUID, str | None]
# What totals are kept under: a pair, or (summed over companies) a cost key.
Key = TypeVar("Key", bound=Hashable)


def snapshot(session: Session) -> None:
    """Make a report's several statements read one snapshot (call before the first).

    SQLite's read transactions are snapshots already; PostgreSQL's default
    READ COMMITTED gives each statement its own, so a concurrent batch could
    land between two chunks of one report and its buckets would not add up.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        fold.mark_snapshot(session)


def ordered(companies: Sequence[CompanyRef]) -> list[CompanyRef]:
    """SPEC section 2 order: by name (code points), then id."""
    return sorted(companies, key=lambda company: (company.name, str(company.id)))


def company_chunk(instant_count: int, cell_budget: int = CELL_BUDGET) -> int:
    return max(1, cell_budget // max(1, instant_count))


ZERO: Counters = (0, 0, 0, 0)
# Levels of the running totals, in the order prefix_lookups gives them.
LEVELS = (MONTH, DAY, HOUR)


def _add(into: list[Counters], index: int, values: Sequence[int]) -> None:
    into[index] = tuple(a + b for a, b in zip(into[index], values, strict=True))


def _minus(high: Counters, low: Counters) -> Counters:
    return (high[0] - low[0], high[1] - low[1], high[2] - low[2], high[3] - low[3])


def _running(values: Iterable[Sequence[int]]) -> list[Counters]:
    """The running sums of counters: the first, the first two, ..."""
    sums: list[Counters] = []
    running = ZERO
    for value in values:
        running = (
            running[0] + value[0],
            running[1] + value[1],
            running[2] + value[2],
            running[3] + value[3],
        )
        sums.append(running)
    return sums


def _per_instant(
    per_level: list[dict[int, Counters]], picks: list[list[int]], count: int
) -> list[Counters]:
    """One pair's running total at each instant: the sum of its looked-up rows.

    `picks` holds, per level, the range index of each instant (-1: an empty
    range, never a key, so nothing to add).
    """
    columns = [
        [found.get(index, ZERO) for index in level_picks]
        for found, level_picks in zip(per_level, picks, strict=True)
        if found
    ]
    if not columns:
        return [ZERO] * count
    if len(columns) == 1:
        return columns[0]
    if len(columns) == 2:
        return [
            (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])
            for a, b in zip(*columns, strict=True)
        ]
    return [
        (a[0] + b[0] + c[0], a[1] + b[1] + c[1], a[2] + b[2] + c[2], a[3] + b[3] + c[3])
        for a, b, c in zip(*columns, strict=True)
    ]


# A day's month and day lookups never change: reports share them (a series
# of 365 days would otherwise convert each day to a date and back).
_day_lookups = lru_cache(maxsize=8192)(prefix_lookups)


def _seek_plan(hours: Sequence[int]) -> tuple[dict[int, list[tuple[int, int]]], list[list[int]]]:
    """Per level, the distinct non-empty ranges to seek in; per hour, its range at each level.

    A range index of -1 means the level adds nothing (an empty range: midnight
    needs no hour row, the 1st of a month no day row).
    """
    ranges: dict[int, dict[tuple[int, int], int]] = {level: {} for level in LEVELS}
    used: list[list[int]] = []
    for hour in hours:
        day = floor_day(hour)
        lookups = _day_lookups(day)
        picks = []
        for level, low, high in ((*lookups[0],), (*lookups[1],), (HOUR, day, hour)):
            if low >= high:
                picks.append(-1)
                continue
            picks.append(ranges[level].setdefault((low, high), len(ranges[level])))
        used.append(picks)
    return {level: list(found) for level, found in ranges.items()}, used


def _pick(
    rows: tuple[list[int], list[Counters]], wanted: Sequence[tuple[int, int]]
) -> dict[int, Counters]:
    """Range index -> the latest of one pair's rows (sorted by start) starting in that range."""
    starts, values = rows
    picked = {}
    for index, (low, high) in enumerate(wanted):
        at = bisect_left(starts, high) - 1
        if at >= 0 and starts[at] >= low:
            picked[index] = values[at]
    return picked


# The width of a level's bucket, to estimate how many rows a range scan reads
# (a month is taken as 28 days: the estimate only picks a plan).
BUCKET_MICROS = {HOUR: MICROS_PER_HOUR, DAY: MICROS_PER_DAY, MONTH: 28 * MICROS_PER_DAY}
# Rows a range scan may read per pair for the price of one seek per range.
ROWS_PER_SEEK = 4


def _dense(level: int, wanted: list[tuple[int, int]]) -> bool:
    """Whether a level's ranges read best as one seek and one range scan.

    Highs grow with the instants. Dense ranges (a series: one per bucket)
    read best as one seek for the first range and one range scan to the
    last high. Sparse ones (the two edges of a long window) read best as one
    seek per range: a scan would read every row between the edges, a year
    of hour rows for a one-year window.
    """
    highs = [high for _, high in wanted]
    scanned = (max(highs) - min(highs)) // BUCKET_MICROS[level]
    return scanned <= ROWS_PER_SEEK * len(wanted)


def _scan_bounds(wanted: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(lowest low, lowest high, highest high): what repository.level_rows reads."""
    highs = [high for _, high in wanted]
    return min(low for low, _ in wanted), min(highs), max(highs)


def _level_rows(
    session: Session, company_ids: Sequence[uuid.UUID], level: int, wanted: list[tuple[int, int]]
) -> repository.LevelRows:
    """Per pair, the rows of this level from which each wanted range's latest row is picked."""
    if _dense(level, wanted):
        return repository.level_rows(session, company_ids, level, _scan_bounds(wanted))
    # (low, high) per range: the seek of the latest row in [low, high), no scan.
    return repository.range_seeks(session, company_ids, level, wanted)


def _instant_picks(
    hours: Sequence[int], used: list[list[int]], micros: Sequence[int]
) -> list[list[int]]:
    """Per level, the range index each instant picks (_seek_plan's, by the instant's hour)."""
    where = {hour: index for index, hour in enumerate(hours)}
    per_instant = [used[where[floor_hour(instant)]] for instant in micros]
    return [[chosen[position] for chosen in per_instant] for position in range(len(LEVELS))]


def _picked_totals(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    hours: Sequence[int],
    micros: Sequence[int],
) -> dict[Pair, list[Counters]]:
    """The running totals at many hours: rows read per level (scans and seeks,
    _level_rows), each hour's rows picked in Python."""
    ranges, used = _seek_plan(hours)
    found: dict[Pair, list[dict[int, Counters]]] = {}
    for position, level in enumerate(LEVELS):
        wanted = ranges[level]
        if not wanted:
            continue
        rows = _level_rows(session, company_ids, level, wanted)
        for pair, pair_rows in rows.items():
            per_level = found.get(pair)
            if per_level is None:
                per_level = found[pair] = [{}, {}, {}]
            per_level[position] = _pick(pair_rows, wanted)
    picks = _instant_picks(hours, used, micros)
    return {pair: _per_instant(per_level, picks, len(micros)) for pair, per_level in found.items()}


def _range_values(
    deltas: repository.LevelDeltas, wanted: Sequence[tuple[int, int]]
) -> dict[str, dict[int, Counters]]:
    """Per cost key and range index, the sum of the changes starting in the range
    (repository.level_deltas: the scope's running total in it)."""
    found: dict[str, dict[int, Counters]] = {}
    for key, by_start in deltas.items():
        starts = sorted(by_start)
        prefix = [ZERO, *_running(by_start[start] for start in starts)]
        values = {}
        for index, (low, high) in enumerate(wanted):
            first, last = bisect_left(starts, low), bisect_left(starts, high)
            if first < last:
                values[index] = _minus(prefix[last], prefix[first])
        found[key] = values
    return found


@dataclass(frozen=True)
class _MonthsFromDays:
    """The month level of a scope's totals, from the day rows a series reads anyway.

    A month's usage is its pairs' latest day rows summed; so, less the month
    total of the first instant's month (the same for every instant: only
    differences of totals are meaningful), the month level at an instant is
    the day rows' changes (repository.level_deltas) from the first instant's
    month to the instant's month. No month row is sought.
    """

    bounds: tuple[int, int, int]  # the day rows to read (repository.level_rows)
    ranges: list[tuple[int, int]]  # [first month, a later instant's month)
    picks: list[int]  # per distinct hour, its range (-1: the first month, nothing)


def _months_from_days(
    hours: Sequence[int], day_ranges: list[tuple[int, int]]
) -> _MonthsFromDays | None:
    """None unless the day rows are read as one range scan that can cover every
    month between the instants, from the first instant's month on."""
    if not day_ranges:
        return None
    first_month = floor_month(hours[0])
    _, first, high = _scan_bounds(day_ranges)
    # The seek before the scan gives one row per pair: its range [first
    # month, first) must lie within one month.
    if first > add_month(first_month):
        return None
    high = max(high, floor_month(hours[-1]))
    if (high - first) // BUCKET_MICROS[DAY] > ROWS_PER_SEEK * len(day_ranges):
        return None
    months: dict[tuple[int, int], int] = {}
    picks = []
    for hour in hours:
        month = floor_month(hour)
        picks.append(
            -1 if month == first_month else months.setdefault((first_month, month), len(months))
        )
    return _MonthsFromDays((first_month, first, high), list(months), picks)


def _scope_picked(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    hours: Sequence[int],
    micros: Sequence[int],
) -> dict[str | None, list[Counters]]:
    """_picked_totals summed over the companies, per cost key, without a row per
    pair in Python: dense levels as summed changes, sparse ones summed in SQL,
    and the month level from the day rows when they cover it (_MonthsFromDays)."""
    ranges, used = _seek_plan(hours)
    months = _months_from_days(hours, ranges[DAY])
    found: dict[str | None, list[dict[int, Counters]]] = {}

    def keep(position: int, sums: dict[str, dict[int, Counters]]) -> None:
        for key, by_range in sums.items():
            per_level = found.get(key)
            if per_level is None:
                per_level = found[key] = [{}, {}, {}]
            per_level[position] = by_range

    for position, level in enumerate(LEVELS):
        wanted = ranges[level]
        if not wanted or (level == MONTH and months is not None):
            continue
        if level == DAY and months is not None:
            deltas = repository.level_deltas(session, company_ids, level, months.bounds)
            keep(position, _range_values(deltas, wanted))
            keep(LEVELS.index(MONTH), _range_values(deltas, months.ranges))
        elif _dense(level, wanted):
            deltas = repository.level_deltas(session, company_ids, level, _scan_bounds(wanted))
            keep(position, _range_values(deltas, wanted))
        else:
            # Far-apart ranges: one seek per pair and range, unless hour rows
            # are sparse enough to read them all between the first and the
            # last (an instant at :30 every day, in Asia/Kolkata).
            changes = None
            if level == HOUR:
                low, _, high = _scan_bounds(wanted)
                changes = repository.hour_changes(session, company_ids, (low, high), len(wanted))
            if changes is not None:
                keep(position, _range_values(changes, wanted))
            else:
                keep(position, repository.range_seek_sums(session, company_ids, level, wanted))
    if months is not None:
        month_position = LEVELS.index(MONTH)
        used = [
            [
                pick if position != month_position else months.picks[index]
                for position, pick in enumerate(chosen)
            ]
            for index, chosen in enumerate(used)
        ]
    picks = _instant_picks(hours, used, micros)
    return {key: _per_instant(per_level, picks, len(micros)) for key, per_level in found.items()}


def _summed_totals(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    hours: Sequence[int],
    micros: Sequence[int],
) -> dict[Pair, list[Counters]]:
    """The running totals at a few hours (a window's two edges): the three
    levels' rows found and added up in SQL, one row per pair and hour."""
    lookups = _hour_lookups(hours)
    found = repository.instant_sums(session, company_ids, lookups).items()
    return _at_instants(found, hours, micros)


def _hour_lookups(hours: Sequence[int]) -> list[tuple[int, int, int, int, int, int]]:
    """Per hour, the [low, high) of its month, day and hour rows (prefix_lookups)."""
    lookups = []
    for hour in hours:
        month, day, _ = _day_lookups(floor_day(hour))
        lookups.append((month[1], month[2], day[1], day[2], floor_day(hour), hour))
    return lookups


def _at_instants(
    found: Iterable[tuple[Key, list[tuple[int, tuple[int, ...]]]]],
    hours: Sequence[int],
    micros: Sequence[int],
) -> dict[Key, list[Counters]]:
    """Totals per hour index, as SQL gives them (key, rows) -> totals per
    instant, by its hour."""
    where = {hour: index for index, hour in enumerate(hours)}
    position = [where[floor_hour(instant)] for instant in micros]
    totals: dict[Key, list[Counters]] = {}
    for key, rows in found:
        at_hour = dict(rows)
        totals[key] = [at_hour.get(index, ZERO) for index in position]
    return totals


def _totals(
    session: Session, company_ids: Sequence[uuid.UUID], micros: Sequence[int]
) -> dict[Pair, list[Counters]]:
    """(company, cost key) -> counters of everything before each instant, in order
    (less the unfolded changes before the first instant's hour, the same for
    every instant: only differences of these totals are meaningful).

    At a few distinct hours, SQL adds each hour's three rows up
    (_summed_totals); at many (a series), seeks and range scans per level give
    every row any range can pick, and each range's latest row is found in the
    pair's sorted rows (_picked_totals).
    """
    # Totals and tail of one moment: no fold may commit between the reads.
    fold.hold_off_folds(session)
    hours = sorted({floor_hour(instant) for instant in micros})
    if len(hours) <= SUMMED_HOURS:
        totals = _summed_totals(session, company_ids, hours, micros)
    else:
        totals = _picked_totals(session, company_ids, hours, micros)
    _add_changes(session, company_ids, hours, micros, totals, _same)
    return totals


def _scope_totals(
    session: Session, company_ids: Sequence[uuid.UUID], micros: Sequence[int]
) -> dict[str | None, list[Counters]]:
    """_totals summed over the companies, per cost key (None: interviews only)."""
    fold.hold_off_folds(session)
    hours = sorted({floor_hour(instant) for instant in micros})
    totals: dict[str | None, list[Counters]]
    if len(hours) <= SUMMED_HOURS:
        totals = {}
        for (_, key), cumulative in _summed_totals(session, company_ids, hours, micros).items():
            _add_all(totals, key, cumulative)
    else:
        totals = _scope_picked(session, company_ids, hours, micros)
    _add_changes(session, company_ids, hours, micros, totals, _cost_key)
    return totals


def _unit_totals(
    session: Session, unit: str, company_ids: Sequence[uuid.UUID], micros: Sequence[int]
) -> dict[str | None, list[Counters]]:
    """_scope_totals of every company billed in `unit`, from the unit's own
    running totals (tally.usage.units): three rows per cost key and instant
    summed in SQL, then the companies' unfolded tail and partial hours."""
    fold.hold_off_folds(session)
    hours = sorted({floor_hour(instant) for instant in micros})
    found = repository.unit_sums(session, unit, _hour_lookups(hours)).items()
    totals: dict[str | None, list[Counters]] = _at_instants(found, hours, micros)
    _add_changes(session, company_ids, hours, micros, totals, _cost_key)
    return totals


def _same(pair: Pair) -> Pair:
    return pair


def _cost_key(pair: Pair) -> str | None:
    return pair[1]


def _add_all(totals: dict[Key, list[Counters]], key: Key, cumulative: Sequence[Counters]) -> None:
    into = totals.get(key)
    if into is None:
        totals[key] = list(cumulative)
        return
    for index, values in enumerate(cumulative):
        _add(into, index, values)


def _add_changes(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    hours: Sequence[int],
    micros: Sequence[int],
    totals: dict[Key, list[Counters]],
    key_of: Callable[[Pair], Key],
) -> None:
    """Add what the running totals do not hold yet, under key_of(pair): the
    unfolded tail between the instants' hours and the raw events of the
    partial hour before each instant that is not a whole hour."""
    if hours[0] < hours[-1]:
        tail: dict[Key, list[tuple[int, tuple[int, ...]]]] = {}
        for pair, ranges in repository.tail_sums(session, company_ids, hours).items():
            tail.setdefault(key_of(pair), []).extend(ranges)
        _add_tail(totals, tail, hours, micros)
    partial_hours = [
        (index, floor_hour(instant), instant)
        for index, instant in enumerate(micros)
        if instant != floor_hour(instant)
    ]
    if partial_hours:
        raw = repository.raw_sums(session, company_ids, partial_hours)
        for index, company_id, cost_key, *values in raw:
            key = key_of((company_id, cost_key))
            if key not in totals:
                totals[key] = [ZERO] * len(micros)
            _add(totals[key], index, values)


def _add_tail(
    totals: dict[Key, list[Counters]],
    tail: dict[Key, list[tuple[int, tuple[int, ...]]]],
    hours: Sequence[int],
    micros: Sequence[int],
) -> None:
    """Add to each instant's totals the unfolded changes of the hours from the
    first instant's hour to its own (`tail`: their sums between consecutive
    distinct hours, by range index, a range possibly more than once).

    Changes of earlier hours would add the same to every instant, and the
    report only ever takes differences of these totals: they are left out,
    so what is read is bounded by the window, not by the tail.
    """
    where = {hour: index for index, hour in enumerate(hours)}
    position = [where[floor_hour(instant)] for instant in micros]
    for key, ranges in tail.items():
        cumulative = totals.get(key)
        if cumulative is None:
            cumulative = totals[key] = [ZERO] * len(micros)
        # At each distinct hour, the sum of the ranges before it.
        between = [ZERO] * len(hours)
        for index, sums in ranges:
            _add(between, index + 1, sums)
        at_hour = _running(between)
        for index, hour_index in enumerate(position):
            if hour_index:
                _add(cumulative, index, at_hour[hour_index])


def _usage(cumulative: Sequence[Counters], key: str | None, usage: Sequence[Usage]) -> None:
    """Add one pair's (or cost key's) differences of totals to each interval's usage."""
    for index, (low, high) in enumerate(pairwise(cumulative)):
        if low == high:
            continue
        events = high[0] - low[0]
        usage[index].interviews += high[3] - low[3]
        if key is not None and events:
            usage[index].by_cost_key[key] = Sums(events, high[1] - low[1], high[2] - low[2])


def _chunk_series(
    session: Session, companies: Sequence[CompanyRef], micros: Sequence[int]
) -> list[CompanySeries]:
    count = len(micros) - 1
    result = {
        company.id: CompanySeries(company, [Usage() for _ in range(count)]) for company in companies
    }
    totals = _totals(session, [company.id for company in companies], micros)
    for (company_id, key), cumulative in totals.items():
        _usage(cumulative, key, result[company_id].usage)
    return [result[company.id] for company in companies]


def _checked(instants: Sequence[datetime]) -> list[int]:
    micros = [to_micros(instant) for instant in instants]
    if any(low >= high for low, high in pairwise(micros)):
        raise ValueError("instants must be strictly increasing")
    return micros


def scope_series(
    session: Session, companies: Sequence[CompanyRef], instants: Sequence[datetime]
) -> list[dict[str, Usage]]:
    """Usage summed over the companies in [t0, t1), ..., [tN-1, tN), per bucket and
    unit (billing system): the top-level buckets of a series, without
    computing each company's (a platform's chart of 1,000 companies).

    Equal, bucket by bucket, to the sum of series() over the companies of
    each unit: read from the unit's running totals when the companies are
    every company billed in it, else the companies' running totals added up
    as they are read.
    """
    micros = _checked(instants)
    result: list[dict[str, Usage]] = [{} for _ in range(len(micros) - 1)]
    by_unit: dict[str, list[uuid.UUID]] = {}
    for company in companies:
        by_unit.setdefault(company.billing_system, []).append(company.id)
    for unit, company_ids in sorted(by_unit.items()):
        usage = [Usage() for _ in result]
        if units.is_whole(session, unit, company_ids):
            totals = _unit_totals(session, unit, company_ids, micros)
        else:
            totals = _scope_totals(session, company_ids, micros)
        for key, cumulative in totals.items():
            _usage(cumulative, key, usage)
        for into, bucket in zip(result, usage, strict=True):
            into[unit] = bucket
    return result


def series(
    session: Session,
    companies: Sequence[CompanyRef],
    instants: Sequence[datetime],
    cell_budget: int = CELL_BUDGET,
) -> Iterator[CompanySeries]:
    """Each company's usage in [t0, t1), ..., [tN-1, tN), in the order given.

    Computed a chunk of companies at a time, so memory is bounded whatever the
    number of companies.
    """
    micros = _checked(instants)
    step = company_chunk(len(micros), cell_budget)
    for offset in range(0, len(companies), step):
        yield from _chunk_series(session, companies[offset : offset + step], micros)
