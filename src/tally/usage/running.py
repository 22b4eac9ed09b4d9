"""Shifting running totals by changes: the one write of usage_buckets and usage_unit_buckets.

Both tables hold, per owner (a company, or a billing system) and cost key,
the running totals of tally.usage.buckets. A change at a bucket is added to
that bucket's row and to every later row of the same period; a bucket seen
for the first time starts from the latest total before it.
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tally.db.driver import Driver
from tally.usage.buckets import period

# The advisory lock key of folds and of every writer of the units' totals
# (PostgreSQL; tally.usage.fold, tally.usage.units): "tallyfol" in ASCII.
FOLD_LOCK = 0x74616C6C79666F6C

# Every later bucket of the same period takes the change too (running totals).
_SHIFT_LATER = (
    "UPDATE {table} SET events = events + {m}, minutes = minutes + {m},"
    " credits = credits + {m}, interviews = interviews + {m}"
    " WHERE {owner} = {m} AND cost_key = {m} AND granularity = {m}"
    " AND bucket_start >= {m} AND bucket_start < {m}"
)
# A bucket seen for the first time starts from the latest total before it.
_ADD_MISSING = (
    "INSERT INTO {table} ({owner}, cost_key, granularity, bucket_start,"
    " events, minutes, credits, interviews)"
    " SELECT {m}, {m}, {m}, {m}, COALESCE(p.events, 0) + {m},"
    " COALESCE(p.minutes, 0) + {m}, COALESCE(p.credits, 0) + {m},"
    " COALESCE(p.interviews, 0) + {m}"
    " FROM (SELECT 1 AS one) AS anchor LEFT JOIN {table} p"
    " ON p.{owner} = {m} AND p.cost_key = {m} AND p.granularity = {m}"
    " AND p.bucket_start = (SELECT MAX(q.bucket_start) FROM {table} q"
    " WHERE q.{owner} = {m} AND q.cost_key = {m} AND q.granularity = {m}"
    " AND q.bucket_start >= {m} AND q.bucket_start < {m})"
    " WHERE NOT EXISTS (SELECT 1 FROM {table} e WHERE e.{owner} = {m}"
    " AND e.cost_key = {m} AND e.granularity = {m} AND e.bucket_start = {m})"
)

# (owner, cost key, granularity, bucket start), (events, minutes, credits, interviews)
Change = tuple[tuple[Any, str, int, int], Sequence[int]]


def shift(
    session: Session,
    changes: Sequence[Change],
    table: str,
    owner: str,
    param: Callable[[Any], Any],
) -> None:
    """Add non-zero changes, each period's buckets oldest first, to `table`'s
    running totals (`owner` its first key column, `param` its value as bound).

    First every existing row from the bucket to the end of its period takes
    the change; then each missing bucket is created from the total just
    before it, oldest first, so a bucket created earlier in the same call
    is already the predecessor of a later one.
    """
    if not changes:
        return
    driver = Driver(session)
    shifts: list[tuple[Any, ...]] = []
    inserts: list[tuple[Any, ...]] = []
    for (who, cost_key, granularity, start), sums in changes:
        low, high = period(granularity, start)
        key = (param(who), cost_key, granularity)
        shifts.append((*sums, *key, start, high))
        inserts.append((*key, start, *sums, *key, *key, low, start, *key, start))
    # Only tally's own constants go into the text.
    names = {"m": driver.mark, "table": table, "owner": owner}
    driver.executemany(_SHIFT_LATER.format(**names), shifts)
    driver.executemany(_ADD_MISSING.format(**names), inserts)
