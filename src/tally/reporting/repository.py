"""SQL of the report: running totals at many hour-aligned instants, raw events in short ranges.

`running_totals` answers, for every (company, cost key) pair in scope and
each of N hour-aligned instants, the total of counted events before it: three
seeks per pair and instant into usage_buckets (see tally.usage.buckets), all
instants in one statement through a VALUES list. `raw_sums` adds up raw
events (and interviews first counted) in short ranges, the part of an hour
before instants that are not whole UTC hours.
"""

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tally.db.driver import Driver
from tally.usage.buckets import DAY, HOUR, MONTH, prefix_lookups

# Companies per statement: keeps each statement's parameters well under SQLite's limit.
COMPANY_CHUNK = 500
# Instants (or ranges) per statement, for the same reason.
INSTANT_CHUNK = 200
COUNTERS = ("events", "minutes", "credits", "interviews")
LEVELS = ((0, MONTH, "mlo", "mhi"), (1, DAY, "dlo", "dhi"), (2, HOUR, "hlo", "hhi"))

# SQLite plans the MAX subquery as one seek and the join as a point lookup.
_LOOKUP_JOIN = (
    " LEFT JOIN usage_buckets l{n} ON l{n}.company_id = p.company_id"
    " AND l{n}.cost_key = p.cost_key AND l{n}.granularity = {g}"
    " AND l{n}.bucket_start = (SELECT MAX(x.bucket_start) FROM usage_buckets x"
    " WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= t.{lo} AND x.bucket_start < t.{hi})"
)
# PostgreSQL plans a correlated MAX as a hash join over the whole table;
# a LATERAL ... ORDER BY ... LIMIT 1 is one backward index seek instead.
_LOOKUP_LATERAL = (
    " LEFT JOIN LATERAL (SELECT x.events, x.minutes, x.credits, x.interviews"
    " FROM usage_buckets x WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {g} AND x.bucket_start >= t.{lo} AND x.bucket_start < t.{hi}"
    " ORDER BY x.bucket_start DESC LIMIT 1) l{n} ON TRUE"
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

# (instant or range index, company, cost key or None, events, minutes, credits, interviews)
Row = tuple[int, uuid.UUID, str | None, int, int, int, int]


def _values(driver: Driver, name: str, columns: Sequence[str], rows: list[list[int]]) -> str:
    """WITH name(columns) AS (VALUES ...): integers, cast so PostgreSQL types them alike."""
    mark = driver.mark if driver.sqlite else f"CAST({driver.mark} AS BIGINT)"
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    return f"WITH {name}({', '.join(columns)}) AS (VALUES {', '.join([row] * len(rows))})"


def _level_sum(counter: str) -> str:
    return " + ".join(f"COALESCE(l{n}.{counter}, 0)" for n, _, _, _ in LEVELS)


def _totals_statement(
    driver: Driver, ids: list[Any], instants: Sequence[tuple[int, int]]
) -> tuple[str, list[Any]]:
    rows: list[list[int]] = []
    for index, instant in instants:
        bounds = {level: (low, high) for level, low, high in prefix_lookups(instant)}
        rows.append([index, *bounds[MONTH], *bounds[DAY], *bounds[HOUR]])
    columns = ("i", "mlo", "mhi", "dlo", "dhi", "hlo", "hhi")
    join = _LOOKUP_JOIN if driver.sqlite else _LOOKUP_LATERAL
    joins = "".join(join.format(n=n, g=g, lo=lo, hi=hi) for n, g, lo, hi in LEVELS)
    sums = ", ".join(_level_sum(counter) for counter in COUNTERS)
    marks = ", ".join([driver.mark] * len(ids))
    select = f" SELECT t.i, p.company_id, p.cost_key, {sums} FROM t CROSS JOIN usage_pairs p"  # noqa: S608
    where = f" WHERE p.company_id IN ({marks})"
    # Only tally's own constants and placeholders go into the text.
    statement = _values(driver, "t", columns, rows) + select + joins + where
    return statement, [value for row in rows for value in row] + ids


def _raw_statement(
    driver: Driver, ids: list[Any], ranges: Sequence[tuple[int, int, int]]
) -> tuple[str, list[Any]]:
    rows = [list(item) for item in ranges]
    marks = ", ".join([driver.mark] * len(ids))
    statement = _values(driver, "r", ("i", "lo", "hi"), rows) + " " + _RAW.format(ids=marks)
    return statement, [value for row in rows for value in row] + ids + ids


def _rows(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    items: Sequence[Any],
    build: Any,
) -> Iterator[Row]:
    driver = Driver(session)
    for offset in range(0, len(company_ids), COMPANY_CHUNK):
        part = company_ids[offset : offset + COMPANY_CHUNK]
        keys = [driver.uuid(company_id) for company_id in part]
        back = dict(zip(keys, part, strict=True))
        for low in range(0, len(items), INSTANT_CHUNK):
            statement, params = build(driver, keys, items[low : low + INSTANT_CHUNK])
            for row in driver.fetchall(statement, params):
                yield (
                    int(row[0]),
                    back[row[1]],
                    row[2],
                    int(row[3]),
                    int(row[4]),
                    int(row[5]),
                    int(row[6]),
                )


def running_totals(
    session: Session, company_ids: Sequence[uuid.UUID], instants: Sequence[tuple[int, int]]
) -> Iterator[Row]:
    """Totals before each (index, hour-aligned instant), per pair that ever had usage."""
    return _rows(session, company_ids, instants, _totals_statement)


def raw_sums(
    session: Session, company_ids: Sequence[uuid.UUID], ranges: Sequence[tuple[int, int, int]]
) -> Iterator[Row]:
    """Sums of counted events in each (index, low, high) range; interviews on NULL cost keys."""
    return _rows(session, company_ids, ranges, _raw_statement)
