"""Shifting running totals by changes: the one write of usage_buckets and usage_unit_buckets.

Both tables hold, per owner (a company, or a billing system) and cost key,
the running totals of tally.usage.buckets. A change at a bucket is added to
that bucket's row and to every later row of the same period; a bucket seen
for the first time starts from the latest total before it.

However many the changes, they are staged in a temporary table (`prepare`,
then filled by the caller; or `shift` from Python values) and applied by
`apply`: on PostgreSQL two statements; on SQLite the new buckets computed
whole in one statement, and one range UPDATE, run by the driver, per change
that has stored rows from its bucket to the end of its period (none, for a
change in a period's newest bucket: the common case of time-ordered
events). Building one statement per bucket in Python made a fold's cost per
tail row mostly Python (docs/performance.md).
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tally.db.driver import Driver
from tally.usage.buckets import period

# The advisory lock key of folds and of every writer of the units' totals
# (PostgreSQL; tally.usage.fold, tally.usage.units): "tallyfol" in ASCII.
FOLD_LOCK = 0x74616C6C79666F6C

# The changes of one call, staged in a temporary table of the connection
# (one per target table: the owner column's type differs), with each
# change's period [low, high).
STAGE = "tally_shift_{table}"
_STAGE_QUERY = (
    "AS SELECT {owner} AS owner, cost_key, granularity, bucket_start,"
    " bucket_start AS low, bucket_start AS high, events, minutes, credits, interviews"
    " FROM {table} WHERE 1 = 0"
)
STAGE_COLUMNS = (
    "owner, cost_key, granularity, bucket_start, low, high, events, minutes, credits, interviews"
)
# The four sums of a staged change, and the condition that keeps only changes.
SUMS = "SUM(events), SUM(minutes), SUM(credits), SUM(interviews)"
NON_ZERO = (
    "HAVING SUM(events) <> 0 OR SUM(minutes) <> 0 OR SUM(credits) <> 0 OR SUM(interviews) <> 0"
)
# PostgreSQL, in two statements:
# 1. Every bucket seen for the first time is created equal to the latest row
# before it in its period (what the running total was there), or zero. A
# bucket created by this statement copies the same total, so the rows it
# reads as predecessors, old or new, agree. The predecessor's start is found
# first (one backward index seek per new bucket), then its row by its whole
# key: a join condition holding the correlated MAX made PostgreSQL evaluate
# it for every row of the pair's level.
_ADD_MISSING = (
    "INSERT INTO {table} ({owner}, cost_key, granularity, bucket_start,"
    " events, minutes, credits, interviews)"
    " SELECT s.owner, s.cost_key, s.granularity, s.bucket_start,"
    " COALESCE(p.events, 0), COALESCE(p.minutes, 0), COALESCE(p.credits, 0),"
    " COALESCE(p.interviews, 0)"
    " FROM (SELECT n.owner, n.cost_key, n.granularity, n.bucket_start,"
    " (SELECT MAX(q.bucket_start) FROM {table} q"
    " WHERE q.{owner} = n.owner AND q.cost_key = n.cost_key"
    " AND q.granularity = n.granularity AND q.bucket_start >= n.low"
    " AND q.bucket_start < n.bucket_start) AS before"
    " FROM {stage} n WHERE NOT EXISTS (SELECT 1 FROM {table} e"
    " WHERE e.{owner} = n.owner AND e.cost_key = n.cost_key"
    " AND e.granularity = n.granularity AND e.bucket_start = n.bucket_start)) s"
    " LEFT JOIN {table} p ON p.{owner} = s.owner AND p.cost_key = s.cost_key"
    " AND p.granularity = s.granularity AND p.bucket_start = s.before"
)
# 2. Every row from a changed bucket to the end of its period takes the
# change: the sum of the changes at or before it in its period.
_SHIFT = (
    "UPDATE {table} SET events = {table}.events + d.events,"
    " minutes = {table}.minutes + d.minutes, credits = {table}.credits + d.credits,"
    " interviews = {table}.interviews + d.interviews"
    " FROM (SELECT b.{owner} AS owner, b.cost_key AS cost_key,"
    " b.granularity AS granularity, b.bucket_start AS bucket_start,"
    " SUM(s.events) AS events, SUM(s.minutes) AS minutes, SUM(s.credits) AS credits,"
    " SUM(s.interviews) AS interviews"
    " FROM {stage} s CROSS JOIN {table} b"
    " WHERE b.{owner} = s.owner AND b.cost_key = s.cost_key"
    " AND b.granularity = s.granularity AND b.bucket_start >= s.bucket_start"
    " AND b.bucket_start < s.high"
    " GROUP BY b.{owner}, b.cost_key, b.granularity, b.bucket_start) d"
    " WHERE {table}.{owner} = d.owner AND {table}.cost_key = d.cost_key"
    " AND {table}.granularity = d.granularity AND {table}.bucket_start = d.bucket_start"
)
# SQLite, in three steps, so that each row is written once:
# 1. The buckets seen for the first time, whole, set aside in a temporary
# table while the stored rows are shifted: the latest stored row before the
# bucket in its period (one backward index seek; what the running total was
# there, or zero), plus the sum of the period's staged changes up to and
# including the bucket (a window over the stage).
NEW = "tally_new_{table}"
_NEW_QUERY = (
    "AS SELECT {owner} AS owner, cost_key, granularity, bucket_start,"
    " events, minutes, credits, interviews FROM {table} WHERE 1 = 0"
)
_NEW_ROWS = (
    "INSERT INTO {new} (owner, cost_key, granularity, bucket_start,"
    " events, minutes, credits, interviews)"
    " SELECT s.owner, s.cost_key, s.granularity, s.bucket_start,"
    " COALESCE(p.events, 0) + s.events, COALESCE(p.minutes, 0) + s.minutes,"
    " COALESCE(p.credits, 0) + s.credits, COALESCE(p.interviews, 0) + s.interviews"
    " FROM (SELECT c.*, (SELECT MAX(q.bucket_start) FROM {table} q"
    " WHERE q.{owner} = c.owner AND q.cost_key = c.cost_key"
    " AND q.granularity = c.granularity AND q.bucket_start >= c.low"
    " AND q.bucket_start < c.bucket_start) AS before"
    " FROM (SELECT owner, cost_key, granularity, bucket_start, low,"
    " SUM(events) OVER w AS events, SUM(minutes) OVER w AS minutes,"
    " SUM(credits) OVER w AS credits, SUM(interviews) OVER w AS interviews"
    " FROM {stage} WINDOW w AS (PARTITION BY owner, cost_key, granularity, low"
    " ORDER BY bucket_start)) c"
    " WHERE NOT EXISTS (SELECT 1 FROM {table} e"
    " WHERE e.{owner} = c.owner AND e.cost_key = c.cost_key"
    " AND e.granularity = c.granularity AND e.bucket_start = c.bucket_start)) s"
    " LEFT JOIN {table} p ON p.{owner} = s.owner AND p.cost_key = s.cost_key"
    " AND p.granularity = s.granularity AND p.bucket_start = s.before"
)
# 2. Each change with stored rows from its bucket to the end of its period:
# those rows take it, in one range UPDATE.
_STAGED_RANGES = (
    "SELECT s.events, s.minutes, s.credits, s.interviews, s.owner, s.cost_key,"
    " s.granularity, s.bucket_start, s.high FROM {stage} s WHERE EXISTS (SELECT 1"
    " FROM {table} t WHERE t.{owner} = s.owner AND t.cost_key = s.cost_key"
    " AND t.granularity = s.granularity AND t.bucket_start >= s.bucket_start"
    " AND t.bucket_start < s.high)"
)
_SHIFT_RANGE = (
    "UPDATE {table} SET events = events + ?, minutes = minutes + ?,"
    " credits = credits + ?, interviews = interviews + ?"
    " WHERE {owner} = ? AND cost_key = ? AND granularity = ?"
    " AND bucket_start >= ? AND bucket_start < ?"
)
# 3. The new buckets join the table.
_ADD_NEW = (
    "INSERT INTO {table} ({owner}, cost_key, granularity, bucket_start,"
    " events, minutes, credits, interviews)"
    " SELECT owner, cost_key, granularity, bucket_start, events, minutes, credits,"
    " interviews FROM {new}"
)
# (owner, cost key, granularity, bucket start), (events, minutes, credits, interviews)
Change = tuple[tuple[Any, str, int, int], Sequence[int]]


def prepare(session: Session, table: str, owner: str) -> str:
    """An empty staging table of changes to `table` (temporary, of this
    connection); its name. Fill it (one row per bucket, non-zero), then `apply`."""
    stage = STAGE.format(table=table)
    Driver(session).empty_temp_table(stage, query=_STAGE_QUERY.format(owner=owner, table=table))
    return stage


def apply(session: Session, table: str, owner: str) -> None:
    """Add the staged changes to `table`'s running totals, set-based."""
    stage = STAGE.format(table=table)
    names = {"table": table, "owner": owner, "stage": stage}
    connection = session.connection()
    if session.get_bind().dialect.name == "sqlite":
        new = NEW.format(table=table)
        Driver(session).empty_temp_table(new, query=_NEW_QUERY.format(owner=owner, table=table))
        connection.exec_driver_sql(_NEW_ROWS.format(new=new, **names))
        # SQLite updates a range of its clustered key in place, where the
        # joined UPDATE ... FROM finds each row, then seeks it again: on a
        # 1 M-event history, random-order folds took half as long again that
        # way. So each change with stored rows after it is one range UPDATE,
        # run by the driver in C over rows read straight from the stage.
        changes = connection.exec_driver_sql(_STAGED_RANGES.format(**names)).fetchall()
        if changes:
            connection.exec_driver_sql(_SHIFT_RANGE.format(**names), [tuple(r) for r in changes])
        connection.exec_driver_sql(_ADD_NEW.format(new=new, **names))
        return
    # Each staged change touches a few rows found by their key, whatever the
    # table's size: the plan must be index seeks in a nested loop. Left to
    # statistics, PostgreSQL chose otherwise where they were stale (a table
    # filling up during an import: a hash join evaluating the predecessor's
    # subquery for every row, minutes per fold) or where the table is large
    # (a sequential scan of every bucket to update a few thousand; JIT
    # compilation on top). So, for these two statements only, the other
    # join methods and JIT are off. (Sequential scans stay allowed: the
    # staged changes are read by one, and forbidding them made the planner
    # read the whole table in the outer loop instead.)
    saved = connection.exec_driver_sql(_SAVE_PLANNER).one()
    connection.exec_driver_sql(_SET_PLANNER, ("off",) * len(_PLANNER))
    connection.exec_driver_sql(_ADD_MISSING.format(**names))
    connection.exec_driver_sql(_SHIFT.format(**names))
    connection.exec_driver_sql(_SET_PLANNER, tuple(saved))


_PLANNER = ("enable_hashjoin", "enable_mergejoin", "jit")
_SAVE_PLANNER = "SELECT " + ", ".join(f"current_setting('{name}')" for name in _PLANNER)
_SET_PLANNER = "SELECT " + ", ".join(f"set_config('{name}', %s, true)" for name in _PLANNER)


def shift(
    session: Session,
    changes: Sequence[Change],
    table: str,
    owner: str,
    param: Callable[[Any], Any],
) -> None:
    """Add non-zero changes (one per bucket) to `table`'s running totals
    (`owner` its first key column, `param` its value as bound), set-based:
    staged, then applied by `apply`."""
    if not changes:
        return
    driver = Driver(session)
    stage = prepare(session, table, owner)
    rows: list[tuple[Any, ...]] = []
    for (who, cost_key, granularity, start), sums in changes:
        low, high = period(granularity, start)
        rows.append((param(who), cost_key, granularity, start, low, high, *sums))
    marks = ", ".join([driver.mark] * 10)
    driver.executemany(f"INSERT INTO {stage} ({STAGE_COLUMNS}) VALUES ({marks})", rows)  # noqa: S608
    apply(session, table, owner)
