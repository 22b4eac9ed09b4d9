"""SQL of the report: running totals at many hour-aligned instants, raw events in short ranges.

The total of counted events before an hour-aligned instant is the sum of
three rows of usage_buckets (see tally.usage.buckets): the latest month row
before its month, the latest day row of its month before its day, the latest
hour row of its day before it. `latest_rows` finds, for every (company, cost
key) pair in scope, the latest row of one level in each of many ranges, all
ranges in one statement through a VALUES list; the service asks each level
only for the distinct, non-empty ranges its instants need (daily instants
share a few month ranges and need no hour range at all). `raw_sums` adds up
raw events (and interviews first counted) in short ranges, the part of an
hour before instants that are not whole UTC hours.
"""

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tally.db.driver import Driver

# Companies per statement: keeps each statement's parameters well under SQLite's limit.
COMPANY_CHUNK = 500
# Ranges per statement, for the same reason.
RANGE_CHUNK = 300

# One range scan per company and level: every row of the level whose start is
# in [lo, hi), for each pair of the company, in the primary key's order. CROSS
# JOIN fixes SQLite's join order (pairs, then their rows).
_SCAN = (
    "SELECT p.company_id, p.cost_key, l.bucket_start,"
    " l.events, l.minutes, l.credits, l.interviews"
    " FROM usage_pairs p CROSS JOIN usage_buckets l"
    " WHERE p.company_id IN ({ids}) AND l.company_id = p.company_id"
    " AND l.cost_key = p.cost_key AND l.granularity = {g}"
    " AND l.bucket_start >= {m} AND l.bucket_start < {m}"
    " ORDER BY p.company_id, p.cost_key, l.bucket_start"
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


def _values(driver: Driver, name: str, columns: Sequence[str], rows: list[list[int]]) -> str:
    """WITH name(columns) AS (VALUES ...): integers, cast so PostgreSQL types them alike."""
    mark = driver.mark if driver.sqlite else f"CAST({driver.mark} AS BIGINT)"
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    return f"WITH {name}({', '.join(columns)}) AS (VALUES {', '.join([row] * len(rows))})"


def _raw_statement(
    driver: Driver, ids: list[Any], ranges: Sequence[tuple[int, int, int]]
) -> tuple[str, list[Any]]:
    rows = [list(item) for item in ranges]
    marks = ", ".join([driver.mark] * len(ids))
    template = _RAW if driver.sqlite else _RAW_LATERAL
    statement = _values(driver, "r", ("i", "lo", "hi"), rows) + " " + template.format(ids=marks)
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
        for low in range(0, len(items), RANGE_CHUNK):
            statement, params = build(driver, keys, items[low : low + RANGE_CHUNK])
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


# (company, cost key) -> the starts of its rows, in order, and their
# (events, minutes, credits, interviews).
LevelRows = dict[tuple[uuid.UUID, str | None], tuple[list[int], list[tuple[int, ...]]]]


def level_rows(
    session: Session, company_ids: Sequence[uuid.UUID], granularity: int, low: int, high: int
) -> LevelRows:
    """Every row of this level starting in [low, high), per pair of the companies."""
    driver = Driver(session)
    found: LevelRows = {}
    for offset in range(0, len(company_ids), COMPANY_CHUNK):
        part = company_ids[offset : offset + COMPANY_CHUNK]
        keys = [driver.uuid(company_id) for company_id in part]
        back = dict(zip(keys, part, strict=True))
        marks = ", ".join([driver.mark] * len(keys))
        # Only tally's own constants and placeholders go into the text.
        statement = _SCAN.format(ids=marks, g=int(granularity), m=driver.mark)
        last: tuple[Any, str] | None = None
        starts: list[int] = []
        values: list[tuple[int, ...]] = []
        # Rows come ordered by pair, then start: one dict entry per pair.
        # The columns are BIGINT: both drivers give ints.
        for row in driver.fetchall(statement, [*keys, low, high]):
            if (row[0], row[1]) != last:
                last = (row[0], row[1])
                starts, values = found[(back[row[0]], row[1])] = ([], [])
            starts.append(row[2])
            values.append(row[3:])
    return found


def raw_sums(
    session: Session, company_ids: Sequence[uuid.UUID], ranges: Sequence[tuple[int, int, int]]
) -> Iterator[Row]:
    """Sums of counted events in each (index, low, high) range; interviews on NULL cost keys."""
    return _rows(session, company_ids, ranges, _raw_statement)
