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


def _difference(counter: str) -> str:
    """cum(end) - cum(start) of one counter: seeks 0-2 are at the end, 3-5 at the start."""

    def seek(n: int) -> str:
        return f"COALESCE(l{n}.{counter}, 0)"

    return f"{seek(0)} + {seek(1)} + {seek(2)} - {seek(3)} - {seek(4)} - {seek(5)}"


def _window_part(driver: Driver, ids: str, window: tuple[int, int]) -> tuple[str, list[Any]]:
    """Per pair in scope: cum(end) - cum(start), from three seeks at each end."""
    columns = ", ".join(f"{_difference(c)} AS {c}" for c in COUNTERS)
    join = _LOOKUP_JOIN if driver.sqlite else _LOOKUP_LATERAL
    joins = "".join(join.format(n=n, m=driver.mark) for n in range(6))
    params: list[Any] = []
    for instant in (window[1], window[0]):
        for granularity, low, high in prefix_lookups(instant):
            # SQLite's form names the granularity twice (join and subquery).
            params += ([granularity] if driver.sqlite else []) + [granularity, low, high]
    statement = (
        f"SELECT p.company_id, p.cost_key, {columns} FROM usage_pairs p{joins}"  # noqa: S608
        f" WHERE p.company_id IN ({ids})"
    )
    return statement, params


def _statement(
    driver: Driver,
    keys: list[Any],
    edges: Sequence[tuple[int, int]],
    window: tuple[int, int] | None,
) -> tuple[str, list[Any]]:
    """One statement for the whole window: the running totals and the raw edges."""
    ids = ", ".join([driver.mark] * len(keys))
    parts: list[str] = []
    params: list[Any] = []
    if window is not None:
        part, part_params = _window_part(driver, ids, window)
        parts.append(part)
        params += part_params + keys
    for low, high in edges:
        parts.append(_RAW.format(ids=ids, m=driver.mark))
        params += [*keys, low, high, *keys, low, high]
    return " UNION ALL ".join(parts), params


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
        for row in driver.fetchall(*_statement(driver, keys, edges, window)):
            yield back[row[0]], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5])
