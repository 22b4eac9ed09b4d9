"""SQL of the report: running totals at many hour-aligned instants, raw events in short ranges.

The total of counted events before an hour-aligned instant is the sum of
three rows of usage_buckets (see tally.usage.buckets): the latest month row
before its month, the latest day row of its month before its day, the latest
hour row of its day before it. `level_rows` reads, for every (company, cost
key) pair in scope, the rows of one level that the window's instants can
pick: the latest before the first instant (one seek per pair) and all rows
up to the last (one range scan per chunk of companies, in key order); the
service finds each instant's row among them (daily instants need no hour
row at all). `raw_sums` adds up
raw events (and interviews first counted) in short ranges, the part of an
hour before instants that are not whole UTC hours. `level_deltas`,
`hour_changes` and `range_seek_sums` give the same totals summed over the
companies, per cost key, for a scope's top-level buckets.
"""

import uuid
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from tally.core.instants import MICROS_PER_DAY
from tally.db.driver import Driver
from tally.usage.buckets import HOUR, period

# Companies per statement: keeps each statement's parameters well under SQLite's limit.
COMPANY_CHUNK = 500
# Ranges per statement, for the same reason.
RANGE_CHUNK = 300

# One range scan per company and level: every row of the level whose start is
# in [lo, hi), for each pair of the company, in the primary key's order. CROSS
# JOIN fixes SQLite's join order (pairs, then their rows).
_SCAN = (
    "SELECT p.company_id, p.cost_key,"
    " l.bucket_start, l.events, l.minutes, l.credits, l.interviews FROM usage_pairs p"
    " CROSS JOIN usage_buckets l"
    " WHERE p.company_id IN ({ids}) AND l.company_id = p.company_id"
    " AND l.cost_key = p.cost_key AND l.granularity = {g}"
    " AND l.bucket_start >= {m} AND l.bucket_start < {m}"
    " ORDER BY p.company_id, p.cost_key, l.bucket_start"
)
# The latest row of each pair in [lo, hi): one index seek per pair. SQLite
# plans the MAX subquery as one seek and the row as a point lookup;
# PostgreSQL plans a correlated MAX as a hash join over the whole table, so
# there a LATERAL ... ORDER BY ... LIMIT 1 is the backward seek.
_SEEK_MAX = (
    "SELECT p.company_id, p.cost_key,"
    " l.bucket_start, l.events, l.minutes, l.credits, l.interviews FROM usage_pairs p"
    " CROSS JOIN usage_buckets l"
    " WHERE p.company_id IN ({ids}) AND l.company_id = p.company_id"
    " AND l.cost_key = p.cost_key AND l.granularity = {g}"
    " AND l.bucket_start = (SELECT MAX(x.bucket_start) FROM usage_buckets x"
    " WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= {m} AND x.bucket_start < {m})"
)
_SEEK_LATERAL = (
    "SELECT p.company_id, p.cost_key,"
    " l.bucket_start, l.events, l.minutes, l.credits, l.interviews FROM usage_pairs p"
    " CROSS JOIN LATERAL (SELECT x.bucket_start, x.events, x.minutes, x.credits, x.interviews"
    " FROM usage_buckets x WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= {m} AND x.bucket_start < {m}"
    " ORDER BY x.bucket_start DESC LIMIT 1) l"
    " WHERE p.company_id IN ({ids})"
)
# The running total of each pair at each of a few instants, summed in SQL:
# per instant, the latest row of each level in its range (SQLite: a MAX seek
# and a point lookup; PostgreSQL: a backward LATERAL seek), added up. A
# report of one window reads 2 rows per pair, not 6 rows through Python.
# ({t}: usage_buckets, owned by company_id, or usage_unit_buckets, by
# billing_system; {o}: that owner column, which the pairs `p` carry too.)
_LEVEL_MAX = (
    " LEFT JOIN {t} {a} ON {a}.{o} = p.{o}"
    " AND {a}.cost_key = p.cost_key AND {a}.granularity = {g}"
    " AND {a}.bucket_start = (SELECT MAX(x.bucket_start) FROM {t} x"
    " WHERE x.{o} = p.{o} AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= i.{a}lo AND x.bucket_start < i.{a}hi)"
)
_LEVEL_LATERAL = (
    " LEFT JOIN LATERAL (SELECT x.events, x.minutes, x.credits, x.interviews"
    " FROM {t} x WHERE x.{o} = p.{o} AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= i.{a}lo AND x.bucket_start < i.{a}hi"
    " ORDER BY x.bucket_start DESC LIMIT 1) {a} ON TRUE"
)
# Aliases of the three levels' rows (month, day, hour) and their granularities.
_LEVEL_ALIASES = (("m", 2), ("d", 1), ("h", 0))
_LEVEL_SUMS = (
    "COALESCE(m.events, 0) + COALESCE(d.events, 0) + COALESCE(h.events, 0) AS e,"
    " COALESCE(m.minutes, 0) + COALESCE(d.minutes, 0) + COALESCE(h.minutes, 0) AS mi,"
    " COALESCE(m.credits, 0) + COALESCE(d.credits, 0) + COALESCE(h.credits, 0) AS c,"
    " COALESCE(m.interviews, 0) + COALESCE(d.interviews, 0) + COALESCE(h.interviews, 0) AS v"
)
_ANY_LEVEL = "(m.events IS NOT NULL OR d.events IS NOT NULL OR h.events IS NOT NULL)"
_SUMS = (
    " SELECT p.company_id, p.cost_key, i.n, {sums} FROM usage_pairs p"
    " CROSS JOIN i{joins} WHERE p.company_id IN ({ids}) AND {any}"
)
# The same of a billing system's totals (usage_unit_buckets), for each cost
# key any company billed in it has used.
_UNIT_SUMS = (
    " SELECT p.cost_key, i.n, {sums} FROM (SELECT DISTINCT c.billing_system,"
    " k.cost_key FROM companies c JOIN usage_pairs k ON k.company_id = c.id"
    " WHERE c.billing_system = {m}) p CROSS JOIN i{joins} WHERE {any}"
)


def _level_joins(driver: Driver, table: str, owner: str) -> str:
    level = _LEVEL_MAX if driver.sqlite else _LEVEL_LATERAL
    return "".join(
        level.format(a=alias, g=granularity, t=table, o=owner)
        for alias, granularity in _LEVEL_ALIASES
    )


class _Chunk(NamedTuple):
    """A chunk of companies as a statement takes them: their keys as bound
    parameters, their placeholders, and each id as fetchall(uuid_text=True)
    returns it mapped back to the UUID."""

    keys: list[Any]
    marks: str
    back: dict[str, uuid.UUID]


def _company_chunks(driver: Driver, company_ids: Sequence[uuid.UUID]) -> Iterator[_Chunk]:
    for offset in range(0, len(company_ids), COMPANY_CHUNK):
        part = company_ids[offset : offset + COMPANY_CHUNK]
        yield _Chunk(
            [driver.uuid(company_id) for company_id in part],
            ", ".join([driver.mark] * len(part)),
            {driver.uuid_text(company_id): company_id for company_id in part},
        )


# Two instants: per pair, the second's total less the first's, as instant 1
# (SQL does the whole join before the first row, and half the rows come back),
# for this many companies or more (for fewer, grouping costs more than it saves).
DIFFERENCES_FROM = 20
_DIFFERENCES = (
    " SELECT s.company_id, s.cost_key, 1, SUM(CASE WHEN s.n = 0 THEN -s.e ELSE s.e END),"
    " SUM(CASE WHEN s.n = 0 THEN -s.mi ELSE s.mi END),"
    " SUM(CASE WHEN s.n = 0 THEN -s.c ELSE s.c END),"
    " SUM(CASE WHEN s.n = 0 THEN -s.v ELSE s.v END)"
    " FROM ({sums}) s GROUP BY s.company_id, s.cost_key"
)


# Per instant: its index, then the [low, high) of its month, day and hour rows.
_LOOKUP_COLUMNS = ("n", "mlo", "mhi", "dlo", "dhi", "hlo", "hhi")


def _sums_statement(
    driver: Driver, rows: Sequence[Sequence[int]], chunk: _Chunk
) -> tuple[str, list[Any]]:
    values, params = _values(driver, "i", _LOOKUP_COLUMNS, rows)
    # Only tally's own constants and placeholders go into the text.
    joins = _level_joins(driver, "usage_buckets", "company_id")
    sums = _SUMS.format(joins=joins, ids=chunk.marks, sums=_LEVEL_SUMS, any=_ANY_LEVEL)
    if len(rows) == 2 and len(chunk.keys) >= DIFFERENCES_FROM:
        sums = _DIFFERENCES.format(sums=sums)
    return values + sums, params + chunk.keys


# (company, cost key) -> (instant index, (events, minutes, credits, interviews)) rows.
InstantSums = dict[tuple[uuid.UUID, str], list[tuple[int, tuple[int, ...]]]]


def unit_sums(
    session: Session, unit: str, lookups: Sequence[tuple[int, int, int, int, int, int]]
) -> dict[str, list[tuple[int, tuple[int, ...]]]]:
    """instant_sums of a billing system's totals (usage_unit_buckets), per cost key."""
    driver = Driver(session)
    rows = [(index, *ranges) for index, ranges in enumerate(lookups)]
    values, params = _values(driver, "i", _LOOKUP_COLUMNS, rows)
    joins = _level_joins(driver, "usage_unit_buckets", "billing_system")
    text = _UNIT_SUMS.format(joins=joins, m=driver.mark, sums=_LEVEL_SUMS, any=_ANY_LEVEL)
    found: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
    for key, index, *sums in driver.fetchall(values + text, [*params, unit]):
        found.setdefault(key, []).append((int(index), tuple(map(int, sums))))
    return found


def instant_sums(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    lookups: Sequence[tuple[int, int, int, int, int, int]],
) -> InstantSums:
    """Per pair of the companies, the sum of its three levels' rows at each instant.

    `lookups` holds, per instant, the [low, high) range of its month, day and
    hour rows (tally.usage.buckets.prefix_lookups); an instant where the pair
    has no row at all is left out. Of two instants (a window's edges) of
    many companies only the difference may be given: as the second's, the
    first's left out (taken as 0), which changes no difference of totals,
    all a report uses.
    """
    driver = Driver(session)
    found: InstantSums = {}
    rows = [(index, *ranges) for index, ranges in enumerate(lookups)]
    for chunk in _company_chunks(driver, company_ids):
        statement, params = _sums_statement(driver, rows, chunk)
        # PostgreSQL's SUM of BIGINTs (two instants) is NUMERIC: ints for the arithmetic.
        for company, key, index, *sums in driver.fetchall(statement, params, uuid_text=True):
            found.setdefault((chunk.back[company], key), []).append((index, tuple(map(int, sums))))
    return found


# The latest row of each pair in each of many ranges [lo, hi), by range index:
# one index seek per pair and range, in one statement (SQLite: a MAX seek and
# a point lookup; PostgreSQL: a backward LATERAL seek).
_SEEKS_MAX = (
    " SELECT r.i, p.company_id, p.cost_key,"
    " l.bucket_start, l.events, l.minutes, l.credits, l.interviews FROM r"
    " CROSS JOIN usage_pairs p CROSS JOIN usage_buckets l"
    " WHERE p.company_id IN ({ids}) AND l.company_id = p.company_id"
    " AND l.cost_key = p.cost_key AND l.granularity = {g}"
    " AND l.bucket_start = (SELECT MAX(x.bucket_start) FROM usage_buckets x"
    " WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= r.lo AND x.bucket_start < r.hi)"
)
_SEEKS_LATERAL = (
    " SELECT r.i, p.company_id, p.cost_key,"
    " l.bucket_start, l.events, l.minutes, l.credits, l.interviews FROM r"
    " CROSS JOIN usage_pairs p"
    " CROSS JOIN LATERAL (SELECT x.bucket_start, x.events, x.minutes, x.credits, x.interviews"
    " FROM usage_buckets x WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= r.lo AND x.bucket_start < r.hi"
    " ORDER BY x.bucket_start DESC LIMIT 1) l"
    " WHERE p.company_id IN ({ids})"
)
# The same rows summed over the pairs, per range and cost key.
_SEEK_SUMS = (
    " SELECT s.i, s.cost_key, SUM(s.events), SUM(s.minutes), SUM(s.credits), SUM(s.interviews)"
    " FROM ({seeks}) s GROUP BY s.i, s.cost_key"
)
_RAW = (
    "SELECT r.i, e.company_id, e.cost_key, COUNT(*), SUM(e.minutes),"
    " SUM(COALESCE(e.credits, 0)), 0 FROM r JOIN usage_events e"
    " ON e.company_id IN ({ids}) AND e.occurred_at >= r.lo AND e.occurred_at < r.hi"
    " WHERE e.is_test = FALSE AND e.voided_at IS NULL"
    " GROUP BY r.i, e.company_id, e.cost_key"
    # Interviews first counted in a range; a NULL cost key marks these rows.
    " UNION ALL SELECT r.i, v.company_id, NULL, 0, 0, 0, COUNT(*) FROM r JOIN interviews v"
    " ON v.company_id IN ({ids}) AND v.first_counted_at >= r.lo AND v.first_counted_at < r.hi"
    " GROUP BY r.i, v.company_id"
)
# PostgreSQL, given a small company, plans the join above as a filter of
# every range against every event of the company (300 x 900 comparisons,
# about 60 ms); LATERAL makes each range one scan of the (company_id,
# instant) index, whatever the company's size (OFFSET 0 keeps PostgreSQL
# from flattening the subqueries back into that join).
_RAW_LATERAL = (
    "SELECT r.i, e.company_id, e.cost_key, COUNT(*), SUM(e.minutes),"
    " SUM(COALESCE(e.credits, 0)), 0 FROM r CROSS JOIN LATERAL"
    " (SELECT x.company_id, x.cost_key, x.minutes, x.credits FROM usage_events x"
    " WHERE x.company_id IN ({ids}) AND x.occurred_at >= r.lo AND x.occurred_at < r.hi"
    " AND x.is_test = FALSE AND x.voided_at IS NULL OFFSET 0) e"
    " GROUP BY r.i, e.company_id, e.cost_key"
    " UNION ALL SELECT r.i, v.company_id, NULL, 0, 0, 0, COUNT(*) FROM r CROSS JOIN LATERAL"
    " (SELECT x.company_id FROM interviews x WHERE x.company_id IN ({ids})"
    " AND x.first_counted_at >= r.lo AND x.first_counted_at < r.hi OFFSET 0) v"
    " GROUP BY r.i, v.company_id"
)

# (instant or range index, company, cost key or None, events, minutes, credits, interviews)
Row = tuple[int, uuid.UUID, str | None, int, int, int, int]


_UNNEST = "WITH {name}({columns}) AS (SELECT * FROM unnest({arrays}))"


def _values(
    driver: Driver, name: str, columns: Sequence[str], rows: Sequence[Sequence[int]]
) -> tuple[str, list[Any]]:
    """WITH name(columns) AS (...) holding integer rows, and its parameters.

    SQLite: a VALUES list of placeholders. PostgreSQL: unnest() of one BIGINT
    array per column, so a statement of 700 ranges has 3 parameters, not
    2,100 that psycopg would split out of the text and PostgreSQL parse.
    """
    if driver.sqlite:
        row = "(" + ", ".join([driver.mark] * len(columns)) + ")"
        text = f"WITH {name}({', '.join(columns)}) AS (VALUES {', '.join([row] * len(rows))})"
        return text, [value for item in rows for value in item]
    arrays = ", ".join([f"CAST(CAST({driver.mark} AS TEXT) AS BIGINT[])"] * len(columns))
    text = _UNNEST.format(name=name, columns=", ".join(columns), arrays=arrays)
    # Array literals ('{1,2,3}'), written by str.join: psycopg's dumper of a
    # list of ints inspects every element in Python.
    return text, ["{" + ",".join(map(str, column)) + "}" for column in zip(*rows, strict=True)]


def _raw_statement(
    driver: Driver, ids: list[Any], ranges: Sequence[tuple[int, int, int]]
) -> tuple[str, list[Any]]:
    marks = ", ".join([driver.mark] * len(ids))
    template = _RAW if driver.sqlite else _RAW_LATERAL
    values, params = _values(driver, "r", ("i", "lo", "hi"), ranges)
    return values + " " + template.format(ids=marks), params + ids + ids


def _rows(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    items: Sequence[Any],
    build: Any,
) -> Iterator[Row]:
    driver = Driver(session)
    for keys, _, back in _company_chunks(driver, company_ids):
        for low in range(0, len(items), RANGE_CHUNK):
            statement, params = build(driver, keys, items[low : low + RANGE_CHUNK])
            for row in driver.fetchall(statement, params, uuid_text=True):
                yield (
                    int(row[0]),
                    back[row[1]],
                    row[2],
                    int(row[3]),
                    int(row[4]),
                    int(row[5]),
                    int(row[6]),
                )


# (company, cost key) -> the starts of its rows, in order, and their
# (events, minutes, credits, interviews).
LevelRows = dict[tuple[uuid.UUID, str | None], tuple[list[int], list[tuple[int, ...]]]]


def _level_statements(
    driver: Driver, granularity: int, bounds: tuple[int, int, int], chunk: _Chunk
) -> list[tuple[str, list[Any]]]:
    """level_rows' statements for a chunk of companies: the seek, then the scan."""
    low, first, high = bounds
    seek = _SEEK_MAX if driver.sqlite else _SEEK_LATERAL
    # Only tally's own constants and placeholders go into the text.
    text = {"ids": chunk.marks, "g": int(granularity), "m": driver.mark}
    statements = []
    if low < first:
        params = [*chunk.keys, low, first] if driver.sqlite else [low, first, *chunk.keys]
        statements.append((seek.format(**text), params))
    if first < high:
        statements.append((_SCAN.format(**text), [*chunk.keys, first, high]))
    return statements


def level_rows(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    granularity: int,
    bounds: tuple[int, int, int],
) -> LevelRows:
    """Per pair of the companies, the rows of this level that ranges with
    lows >= `low` and highs in [`first`, `high`] can pick: its latest row in
    [low, first) (one seek) and every row in [first, high) (one range scan).
    """
    driver = Driver(session)
    found: LevelRows = {}
    for chunk in _company_chunks(driver, company_ids):
        for statement, params in _level_statements(driver, granularity, bounds, chunk):
            last: tuple[Any, str] | None = None
            starts: list[int] = []
            values: list[tuple[int, ...]] = []
            # Rows come ordered by pair, then start (the seek's before the
            # scan's): one dict entry per pair. The columns are BIGINT: ints.
            for row in driver.fetchall(statement, params, uuid_text=True):
                if (row[0], row[1]) != last:
                    last = (row[0], row[1])
                    pair = (chunk.back[row[0]], row[1])
                    if pair not in found:
                        found[pair] = ([], [])
                    starts, values = found[pair]
                starts.append(row[2])
                values.append(row[3:])
    return found


# Cost key -> row start -> (events, minutes, credits, interviews) summed over pairs.
LevelDeltas = dict[str, dict[int, list[int]]]


def level_deltas(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    granularity: int,
    bounds: tuple[int, int, int],
) -> LevelDeltas:
    """The rows level_rows reads, as changes summed over every pair of the companies.

    A row's change is its running total less that of its pair's previous row
    in the same period (tally.usage.buckets.period), or all of it for the
    first. For a range [period start, high) with high in [`first`, `high`],
    the changes of the rows starting in it add up, pair by pair, to the
    pair's latest row in it: so their sums over the starts give the scope's
    running totals without holding a row per pair (a platform's chart of
    1,000 companies). The latest rows in [low, first) count as changes at
    `low`.
    """
    driver = Driver(session)
    if driver.sqlite:
        return _summed_deltas(driver, company_ids, granularity, bounds)
    found: LevelDeltas = {}
    periods: dict[int, int] = {}
    for chunk in _company_chunks(driver, company_ids):
        # Pair -> the period and running total of its row read last.
        previous: dict[tuple[str, str], tuple[int, list[int]]] = {}
        for statement, params in _level_statements(driver, granularity, bounds, chunk):
            for company, key, start, *sums in driver.fetchall(statement, params, uuid_text=True):
                here = periods.get(start)
                if here is None:
                    here = periods[start] = period(granularity, start)[0]
                pair = (company, key)
                before = previous.get(pair)
                previous[pair] = (here, sums)
                if before is not None and before[0] == here:
                    earlier = before[1]
                    sums = [
                        sums[0] - earlier[0],
                        sums[1] - earlier[1],
                        sums[2] - earlier[2],
                        sums[3] - earlier[3],
                    ]
                _add_change(found, key, start, sums)
    return found


def _add_change(found: LevelDeltas, key: str, start: int, sums: Sequence[int]) -> None:
    by_start = found.get(key)
    if by_start is None:
        by_start = found[key] = {}
    into = by_start.get(start)
    if into is None:
        by_start[start] = list(sums)
    else:
        into[0] += sums[0]
        into[1] += sums[1]
        into[2] += sums[2]
        into[3] += sums[3]


# Each row of a range less its pair's previous row of the same period (a MAX
# seek from the period's start, {since}, and a point lookup), summed per cost
# key and start: SQLite does the whole sum in one step, without the GIL, where
# reading the rows into Python would hold it for each (two reports at once
# would then take turns row by row). {source} and the range: per (period
# start, low, high) row of `r` (_CHANGES), or one [low, high) span for every
# pair (_HOUR_CHANGES, the period a UTC day found by arithmetic).
_CHANGES_OF = (
    " SELECT l.cost_key, l.bucket_start, SUM(l.events - COALESCE(q.events, 0)),"
    " SUM(l.minutes - COALESCE(q.minutes, 0)), SUM(l.credits - COALESCE(q.credits, 0)),"
    " SUM(l.interviews - COALESCE(q.interviews, 0))"
    " FROM {source} CROSS JOIN usage_buckets l"
    " LEFT JOIN usage_buckets q ON q.company_id = l.company_id AND q.cost_key = l.cost_key"
    " AND q.granularity = {{g}} AND q.bucket_start = (SELECT MAX(x.bucket_start)"
    " FROM usage_buckets x WHERE x.company_id = l.company_id AND x.cost_key = l.cost_key"
    " AND x.granularity = {{g}} AND x.bucket_start >= {since} AND x.bucket_start < l.bucket_start)"
    " WHERE p.company_id IN ({{ids}}) AND l.company_id = p.company_id"
    " AND l.cost_key = p.cost_key AND l.granularity = {{g}}"
    " AND l.bucket_start >= {low} AND l.bucket_start < {high}"
    " GROUP BY l.cost_key, l.bucket_start"
)
_CHANGES = _CHANGES_OF.format(
    source="r CROSS JOIN usage_pairs p", since="r.plo", low="r.lo", high="r.hi"
)
_HOUR_CHANGES = _CHANGES_OF.format(
    source="usage_pairs p",
    since="l.bucket_start - l.bucket_start % {day}",
    low="{m}",
    high="{m}",
)


def _summed_deltas(
    driver: Driver,
    company_ids: Sequence[uuid.UUID],
    granularity: int,
    bounds: tuple[int, int, int],
) -> LevelDeltas:
    """level_deltas summed in SQL: the seeks of [low, first), and each period's
    part of [first, high) as changes."""
    low, first, high = bounds
    found: LevelDeltas = {}
    if low < first:
        seeks = range_seek_sums(driver.session, company_ids, granularity, [(low, first)])
        for key, by_range in seeks.items():
            _add_change(found, key, low, by_range[0])
    parts = []
    at = first
    while at < high:
        period_low, period_high = period(granularity, at)
        parts.append((period_low, at, min(period_high, high)))
        at = period_high
    if not parts:
        return found
    for chunk in _company_chunks(driver, company_ids):
        for offset in range(0, len(parts), RANGE_CHUNK):
            values, params = _values(
                driver, "r", ("plo", "lo", "hi"), parts[offset : offset + RANGE_CHUNK]
            )
            # Only tally's own constants and placeholders go into the text.
            statement = values + _CHANGES.format(ids=chunk.marks, g=int(granularity))
            for key, start, *sums in driver.fetchall(statement, params + chunk.keys):
                _add_change(found, key, start, sums)
    return found


# The rows of one span [lo, hi) per pair, counted from the index alone, and the pairs.
_SPAN_COUNT = (
    "SELECT (SELECT COUNT(*) FROM usage_pairs p CROSS JOIN usage_buckets l"
    " WHERE p.company_id IN ({ids}) AND l.company_id = p.company_id"
    " AND l.cost_key = p.cost_key AND l.granularity = {g}"
    " AND l.bucket_start >= {m} AND l.bucket_start < {m}),"
    " (SELECT COUNT(*) FROM usage_pairs WHERE company_id IN ({ids}))"
)
# What reading one row's change costs against seeking one pair's latest row
# in one range (SQLite, measured: about 2.5 and 3 microseconds).
ROW_PER_SEEK = 1.2


def hour_changes(
    session: Session, company_ids: Sequence[uuid.UUID], span: tuple[int, int], ranges: int
) -> LevelDeltas | None:
    """The changes of every hour row in [span) (SQLite), summed per cost key and
    start as level_deltas gives them, when reading them costs less than
    seeking each pair's latest row in each of `ranges` ranges in it (rows and
    pairs counted from the index decide); None otherwise, and on PostgreSQL."""
    driver = Driver(session)
    low, high = span
    if not driver.sqlite or low < 0:
        return None
    text = {"g": HOUR, "m": driver.mark, "day": MICROS_PER_DAY}
    chunks = list(_company_chunks(driver, company_ids))
    rows = pairs = 0
    for chunk in chunks:
        # Only tally's own constants and placeholders go into the text.
        statement = _SPAN_COUNT.format(ids=chunk.marks, **text)
        counted = driver.fetchall(statement, [*chunk.keys, low, high, *chunk.keys])[0]
        rows, pairs = rows + int(counted[0]), pairs + int(counted[1])
    if rows * ROW_PER_SEEK > pairs * ranges:
        return None
    found: LevelDeltas = {}
    for chunk in chunks:
        statement = _HOUR_CHANGES.format(ids=chunk.marks, **text)
        for key, start, *sums in driver.fetchall(statement, [*chunk.keys, low, high]):
            _add_change(found, key, start, sums)
    return found


def _seek_statements(
    driver: Driver,
    company_ids: Sequence[uuid.UUID],
    granularity: int,
    ranges: Sequence[tuple[int, int]],
    summed: bool,
) -> Iterator[tuple[_Chunk, str, list[Any]]]:
    """Per chunk of companies and of ranges, the statement of the seeks (range
    index, pair, row), or of their sums per range and cost key (`summed`)."""
    template = _SEEKS_MAX if driver.sqlite else _SEEKS_LATERAL
    indexed = [(index, low, high) for index, (low, high) in enumerate(ranges)]
    for chunk in _company_chunks(driver, company_ids):
        # Only tally's own constants and placeholders go into the text.
        seeks = template.format(ids=chunk.marks, g=int(granularity))
        if summed:
            seeks = _SEEK_SUMS.format(seeks=seeks)
        for offset in range(0, len(indexed), RANGE_CHUNK):
            part = indexed[offset : offset + RANGE_CHUNK]
            values, params = _values(driver, "r", ("i", "lo", "hi"), part)
            yield chunk, values + seeks, params + chunk.keys


def range_seeks(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    granularity: int,
    ranges: Sequence[tuple[int, int]],
) -> LevelRows:
    """Per pair of the companies, its latest row of this level in each range
    [low, high) that holds one: one statement for many ranges (a series whose
    instants are far apart at this level), rows in start order, each once.
    """
    driver = Driver(session)
    picked: dict[tuple[uuid.UUID, str], dict[int, tuple[int, ...]]] = {}
    for chunk, statement, params in _seek_statements(
        driver, company_ids, granularity, ranges, summed=False
    ):
        for _, company, key, start, *sums in driver.fetchall(statement, params, uuid_text=True):
            picked.setdefault((chunk.back[company], key), {})[start] = tuple(sums)
    found: LevelRows = {}
    for pair, rows in picked.items():
        starts = sorted(rows)
        found[pair] = (starts, [rows[start] for start in starts])
    return found


# Cost key -> range index -> (events, minutes, credits, interviews) summed over pairs.
RangeSums = dict[str, dict[int, tuple[int, ...]]]


def range_seek_sums(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    granularity: int,
    ranges: Sequence[tuple[int, int]],
) -> RangeSums:
    """range_seeks summed in SQL over every pair of the companies, per range
    index and cost key: a scope's running totals at far-apart instants."""
    driver = Driver(session)
    found: RangeSums = {}
    for _, statement, params in _seek_statements(
        driver, company_ids, granularity, ranges, summed=True
    ):
        # PostgreSQL's SUM of BIGINTs is NUMERIC (a Decimal): ints for the arithmetic.
        for index, key, *sums in driver.fetchall(statement, params):
            by_range = found.setdefault(key, {})
            total = tuple(map(int, sums))
            earlier = by_range.get(index)
            by_range[index] = total if earlier is None else _plus(earlier, total)
    return found


def _plus(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def raw_sums(
    session: Session, company_ids: Sequence[uuid.UUID], ranges: Sequence[tuple[int, int, int]]
) -> Iterator[Row]:
    """Sums of counted events in each (index, low, high) range; interviews on NULL cost keys."""
    return _rows(session, company_ids, ranges, _raw_statement)


# The unfolded hourly changes of the companies, summed per range [lo, hi) of
# hours (tally.usage.fold): a report needs them only between its instants.
_TAIL = (
    "SELECT r.i, d.company_id, d.cost_key, SUM(d.events), SUM(d.minutes), SUM(d.credits),"
    " SUM(d.interviews) FROM r JOIN usage_deltas d ON d.company_id IN ({ids})"
    " AND d.hour_start >= r.lo AND d.hour_start < r.hi"
    " GROUP BY r.i, d.company_id, d.cost_key"
)

# (company, cost key) -> (range index, its sums), the ranges with changes.
TailSums = dict[tuple[uuid.UUID, str], list[tuple[int, tuple[int, ...]]]]


def tail_sums(session: Session, company_ids: Sequence[uuid.UUID], hours: Sequence[int]) -> TailSums:
    """Per pair of the companies, the sums of unfolded changes in each range
    [hours[i], hours[i + 1]) of consecutive hours, by i."""
    driver = Driver(session)
    ranges = [(index, low, high) for index, (low, high) in enumerate(pairwise(hours))]
    found: TailSums = {}
    for keys, marks, back in _company_chunks(driver, company_ids):
        for offset in range(0, len(ranges), RANGE_CHUNK):
            values, params = _values(
                driver, "r", ("i", "lo", "hi"), ranges[offset : offset + RANGE_CHUNK]
            )
            statement = values + " " + _TAIL.format(ids=marks)
            # PostgreSQL's SUM of BIGINTs is NUMERIC (a Decimal): ints for the arithmetic.
            for index, company, key, *sums in driver.fetchall(
                statement, params + keys, uuid_text=True
            ):
                found.setdefault((back[company], key), []).append((index, tuple(map(int, sums))))
    return found
