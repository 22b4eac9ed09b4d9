"""Running totals per billing system (usage_unit_buckets): every company's, summed.

A platform's chart sums 1,000 companies' buckets per unit; read from
usage_buckets that is a few rows per company and bucket edge. tally also
keeps the same running totals summed over every company billed in a unit
("minutes", "credits"), so the chart reads a few rows per cost key instead
(tally.reporting.service.scope_series uses them when its companies are
exactly a unit's companies).

They change exactly when usage_buckets does: `shift` runs beside every
shift of the companies' totals (a fold, or an inline write), in the same
transaction. A company that changes billing system moves its history from
one unit to the other (`move_company`, in the PATCH's transaction). `rebuild`
writes them from usage_buckets (the migration that added them, `tally verify
--repair`), and `mismatches` is `tally verify`'s check.

On PostgreSQL every writer of these rows holds the exclusive fold lock
(tally.usage.running.FOLD_LOCK): folds take it anyway, and an inline write
or a billing-system change takes it before its first row, so two
transactions never insert the same new unit bucket at once.
"""

import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tally.db.driver import Driver
from tally.usage.aggregates import BucketDeltas
from tally.usage.buckets import DAY, HOUR, MONTH, floor_day, floor_month, period
from tally.usage.running import (
    FOLD_LOCK,
    NON_ZERO,
    STAGE,
    STAGE_COLUMNS,
    SUMS,
    Change,
    apply,
    prepare,
    shift,
)

TABLE = "usage_unit_buckets"
OWNER = "billing_system"
# billing system, cost key, granularity, bucket start
UnitKey = tuple[str, str, int, int]
# Companies per statement: well under SQLite's bound-parameter limit.
CHUNK = 500
# Rows of the running totals read at once while streaming a table.
STREAM_ROWS = 50_000


def _plain(value: str) -> str:
    return value


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FOLD_LOCK})


def billing_systems(session: Session, company_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each company's billing system, as this transaction sees it."""
    driver = Driver(session)
    ids = sorted(set(company_ids), key=lambda value: value.int)
    found: dict[uuid.UUID, str] = {}
    for offset in range(0, len(ids), CHUNK):
        part = ids[offset : offset + CHUNK]
        back = {driver.uuid_text(company_id): company_id for company_id in part}
        marks = ", ".join([driver.mark] * len(part))
        statement = f"SELECT id, billing_system FROM companies WHERE id IN ({marks})"  # noqa: S608
        rows = driver.fetchall(statement, [driver.uuid(item) for item in part], uuid_text=True)
        for company, unit in rows:
            found[back[company]] = unit
    return found


def _summed(changes: Iterable[tuple[UnitKey, Sequence[int]]]) -> list[Change]:
    """Non-zero sums per unit key, each period's buckets oldest first."""
    rows: dict[UnitKey, list[int]] = {}
    for key, sums in changes:
        into = rows.setdefault(key, [0, 0, 0, 0])
        for index, value in enumerate(sums):
            into[index] += value
    return sorted((key, sums) for key, sums in rows.items() if any(sums))


def is_whole(session: Session, unit: str, company_ids: Sequence[uuid.UUID]) -> bool:
    """Whether these are exactly the companies billed in `unit`, as this transaction sees them."""
    rows = session.execute(
        text("SELECT id FROM companies WHERE billing_system = :unit"), {"unit": unit}
    )
    billed = {_uuid(row[0]) for row in rows}
    return len(billed) == len(company_ids) and billed == set(company_ids)


def to_units(session: Session, changes: Sequence[Change]) -> list[Change]:
    """The companies' changes (BucketDeltas.changes()) summed per billing system."""
    systems = billing_systems(session, {key[0] for key, _ in changes})
    return _summed(((systems[key[0]], *key[1:]), sums) for key, sums in changes)


def shift_from_stage(session: Session) -> None:
    """Shift the units' totals by the companies' changes staged for
    usage_buckets (tally.usage.running.prepare), summed per billing system."""
    companies = STAGE.format(table="usage_buckets")
    stage = prepare(session, TABLE, OWNER)
    session.connection().exec_driver_sql(
        f"INSERT INTO {stage} ({STAGE_COLUMNS})"  # noqa: S608 - constants
        " SELECT c.billing_system, s.cost_key, s.granularity, s.bucket_start, s.low, s.high,"
        f" {SUMS} FROM {companies} s JOIN companies c ON c.id = s.owner"
        " GROUP BY c.billing_system, s.cost_key, s.granularity, s.bucket_start, s.low, s.high"
        f" {NON_ZERO}"
    )
    apply(session, TABLE, OWNER)


def lock_for_inline_writes(session: Session) -> None:
    """What an inline write (no tail) takes before shifting units' totals."""
    _lock(session)


def _row_changes(
    rows: Iterable[Sequence[Any]],
) -> Iterator[tuple[tuple[Any, str, int, int], tuple[int, ...]]]:
    """Rows (owner, cost key, granularity, start, counters...) in key order ->
    each row's change: its running total less the row before it in its period."""
    previous: tuple[Any, str, int, tuple[int, int]] | None = None
    before: tuple[int, ...] = (0, 0, 0, 0)
    for owner, cost_key, granularity, start, *values in rows:
        start, granularity = int(start), int(granularity)
        where = (owner, cost_key, granularity, period(granularity, start))
        counters = tuple(int(value) for value in values)
        if where != previous:
            before = (0, 0, 0, 0)
            previous = where
        change = tuple(a - b for a, b in zip(counters, before, strict=True))
        yield (owner, cost_key, granularity, start), change
        before = counters


def _stream(session: Session, statement: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
    result = session.connection().exec_driver_sql(
        statement, tuple(params), execution_options={"stream_results": True}
    )
    for part in result.partitions(STREAM_ROWS):
        yield from part


def move_company(session: Session, company_id: uuid.UUID, old: str, new: str) -> None:
    """Move a company's history in usage_buckets from unit `old` to unit `new`.

    Its unfolded changes stay in the tail: a fold counts them under the
    company's billing system at the time of the fold, the new one.
    """
    if old == new:
        return
    _lock(session)
    driver = Driver(session)
    rows = driver.fetchall(
        "SELECT company_id, cost_key, granularity, bucket_start,"  # noqa: S608
        " events, minutes, credits, interviews FROM usage_buckets"
        f" WHERE company_id = {driver.mark} AND granularity = {HOUR}"
        " ORDER BY cost_key, bucket_start",
        [driver.uuid(company_id)],
    )
    hours = BucketDeltas()
    for (_, cost_key, _, start), change in _row_changes(rows):
        hours.add((company_id, cost_key, start), change)
    moved: list[tuple[UnitKey, Sequence[int]]] = []
    for (_, cost_key, granularity, start), sums in hours.changes():
        moved.append(((old, cost_key, granularity, start), [-value for value in sums]))
        moved.append(((new, cost_key, granularity, start), sums))
    shift(session, _summed(moved), TABLE, OWNER, _plain)


def expected_changes(session: Session, table: str = "usage_buckets") -> dict[UnitKey, list[int]]:
    """The units' changes at every level, from the companies' hour rows of `table`."""
    companies = session.execute(text("SELECT id, billing_system FROM companies"))
    unit_of = {_uuid(company): unit for company, unit in companies}
    rows = _stream(
        session,
        "SELECT company_id, cost_key, granularity, bucket_start,"  # noqa: S608
        f" events, minutes, credits, interviews FROM {table} WHERE granularity = {HOUR}"
        " ORDER BY company_id, cost_key, bucket_start",
        [],
    )
    # Summed per unit and hour first (a tenth of the companies' hours), then
    # to days and months: BucketDeltas.changes() of every company's hours
    # took twice as long.
    hours = _summed(
        ((unit_of[_uuid(company)], cost_key, HOUR, start), change)
        for (company, cost_key, _, start), change in _row_changes(rows)
    )
    return {key: list(sums) for key, sums in _summed(_levels(hours))}


def _levels(hours: Iterable[Change]) -> Iterator[Change]:
    """Each hour's change, and the same change of its day and its month."""
    months: dict[int, int] = {}
    for (owner, cost_key, _, hour), sums in hours:
        day = floor_day(hour)
        month = months.get(day)
        if month is None:
            month = months[day] = floor_month(day)
        yield (owner, cost_key, HOUR, hour), sums
        yield (owner, cost_key, DAY, day), sums
        yield (owner, cost_key, MONTH, month), sums


def _uuid(value: Any) -> uuid.UUID:
    """A UUID column's value as a raw statement returns it (SQLite: 32 hex digits)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def stored_changes(session: Session) -> dict[UnitKey, list[int]]:
    """The units' changes at every level, as usage_unit_buckets holds them."""
    rows = _stream(
        session,
        "SELECT billing_system, cost_key, granularity, bucket_start,"
        " events, minutes, credits, interviews FROM usage_unit_buckets"
        " ORDER BY billing_system, cost_key, granularity, bucket_start",
        [],
    )
    return {key: list(sums) for key, sums in _summed(_row_changes(rows))}


def write(session: Session, changes: dict[UnitKey, list[int]]) -> None:
    """Replace usage_unit_buckets by the running totals of these changes."""
    session.execute(text("DELETE FROM usage_unit_buckets"))
    driver = Driver(session)
    rows: list[tuple[Any, ...]] = []
    previous: tuple[str, str, int, tuple[int, int]] | None = None
    running = [0, 0, 0, 0]
    for (unit, cost_key, granularity, start), sums in sorted(changes.items()):
        where = (unit, cost_key, granularity, period(granularity, start))
        if where != previous:
            running = [0, 0, 0, 0]
            previous = where
        running = [a + b for a, b in zip(running, sums, strict=True)]
        rows.append((unit, cost_key, granularity, start, *running))
    columns = (OWNER, "cost_key", "granularity", "bucket_start")
    driver.executemany(
        driver.insert(TABLE, (*columns, "events", "minutes", "credits", "interviews")), rows
    )


def rebuild(session: Session) -> None:
    """Write the units' totals from the companies' (usage_buckets, folded part)."""
    _lock(session)
    write(session, expected_changes(session))
