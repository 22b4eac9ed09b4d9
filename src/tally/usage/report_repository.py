"""SQL of the usage report: six seeks into the running totals per pair, plus the
raw events of the window's partial hours (see tally.usage.buckets)."""

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tally.db.driver import Driver
from tally.usage.buckets import prefix_lookups

# Keeps each statement's parameters well under SQLite's limit.
CHUNK = 500
COUNTERS = ("events", "minutes", "credits", "interviews")

# SQLite plans the MAX subquery as one seek and the join as a point lookup.
_LOOKUP_JOIN = (
    " LEFT JOIN usage_buckets l{n} ON l{n}.company_id = p.company_id"
    " AND l{n}.cost_key = p.cost_key AND l{n}.granularity = {m}"
    " AND l{n}.bucket_start = (SELECT MAX(x.bucket_start) FROM usage_buckets x"
    " WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {m} AND x.bucket_start >= {m} AND x.bucket_start < {m})"
)
# PostgreSQL plans the correlated MAX as a hash join over the whole table;
# a LATERAL ... ORDER BY ... LIMIT 1 is one backward index seek instead.
_LOOKUP_LATERAL = (
    " LEFT JOIN LATERAL (SELECT x.events, x.minutes, x.credits, x.interviews"
    " FROM usage_buckets x WHERE x.company_id = p.company_id AND x.cost_key = p.cost_key"
    " AND x.granularity = {m} AND x.bucket_start >= {m} AND x.bucket_start < {m}"
    " ORDER BY x.bucket_start DESC LIMIT 1) l{n} ON TRUE"
)
_RAW = (
    "SELECT company_id, cost_key, 1 AS events, minutes, COALESCE(credits, 0) AS credits,"
    " 0 AS interviews FROM usage_events"
    " WHERE company_id IN ({ids}) AND occurred_at >= {m} AND occurred_at < {m}"
    " AND is_test = FALSE AND voided_at IS NULL"
    # Interviews first counted in a raw edge; a NULL cost key marks these rows.
    " UNION ALL SELECT company_id, NULL, 0, 0, 0, 1 FROM interviews"
    " WHERE company_id IN ({ids}) AND first_counted_at >= {m} AND first_counted_at < {m}"
)

Sums = tuple[uuid.UUID, str | None, int, int, int, int]


def _prefix_statement(driver: Driver, count: int) -> str:
    columns = ", ".join(f"COALESCE(l{n}.{c}, 0)" for n in range(6) for c in COUNTERS)
    join = _LOOKUP_JOIN if driver.sqlite else _LOOKUP_LATERAL
    joins = "".join(join.format(n=n, m=driver.mark) for n in range(6))
    ids = ", ".join([driver.mark] * count)
    return (
        f"SELECT p.company_id, p.cost_key, {columns} FROM usage_pairs p{joins}"  # noqa: S608
        f" WHERE p.company_id IN ({ids})"
    )


def _window_sums(driver: Driver, keys: list[Any], window: tuple[int, int]) -> list[tuple[Any, ...]]:
    """Per pair: cum(end) - cum(start) from three seeks at each end."""
    params: list[Any] = []
    for instant in (window[1], window[0]):
        for granularity, low, high in prefix_lookups(instant):
            params += (
                [granularity, granularity, low, high] if driver.sqlite else [granularity, low, high]
            )
    rows = driver.fetchall(_prefix_statement(driver, len(keys)), params + keys)
    # Columns: company, cost key, then 4 counters for each of the six seeks,
    # the three at the window's end first.
    return [
        (
            r[0],
            r[1],
            r[2] + r[6] + r[10] - r[14] - r[18] - r[22],
            r[3] + r[7] + r[11] - r[15] - r[19] - r[23],
            r[4] + r[8] + r[12] - r[16] - r[20] - r[24],
            r[5] + r[9] + r[13] - r[17] - r[21] - r[25],
        )
        for r in rows
    ]


def _raw_sums(
    driver: Driver, keys: list[Any], edges: Sequence[tuple[int, int]]
) -> list[tuple[Any, ...]]:
    ids = ", ".join([driver.mark] * len(keys))
    rows: list[tuple[Any, ...]] = []
    for low, high in edges:
        statement = _RAW.format(ids=ids, m=driver.mark)
        rows += driver.fetchall(statement, [*keys, low, high, *keys, low, high])
    return rows


def sums(
    session: Session,
    company_ids: Sequence[uuid.UUID],
    edges: Sequence[tuple[int, int]],
    window: tuple[int, int] | None,
) -> Iterator[Sums]:
    """(company, cost key or None, events, minutes, credits, interviews) rows to add up.

    A None cost key carries only interviews first counted in a raw edge.
    """
    driver = Driver(session)
    for offset in range(0, len(company_ids), CHUNK):
        part = company_ids[offset : offset + CHUNK]
        keys = [driver.uuid(company_id) for company_id in part]
        back = dict(zip(keys, part, strict=True))
        rows = _raw_sums(driver, keys, edges)
        if window is not None:
            rows += _window_sums(driver, keys, window)
        for row in rows:
            yield back[row[0]], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5])
