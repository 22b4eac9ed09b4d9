"""SQL for usage events, interviews and buckets."""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.orm import Session

from tally.companies.models import Company
from tally.db.driver import Driver
from tally.settings import get_settings
from tally.usage import running, units
from tally.usage.aggregates import BucketDeltas
from tally.usage.buckets import BEGINNING, DAY, FOREVER, HOUR, MONTH, period
from tally.usage.models import Interview, UsageBucket, UsageEvent

# Keeps IN lists well under SQLite's bound-parameter limit.
CHUNK = 500

events: Table = UsageEvent.__table__  # type: ignore[assignment]
interviews: Table = Interview.__table__  # type: ignore[assignment]
buckets: Table = UsageBucket.__table__  # type: ignore[assignment]
companies: Table = Company.__table__  # type: ignore[assignment]


class CountedRow(Protocol):
    """What counting a newly stored event needs of it (ingestion's and the bulk import's)."""

    @property
    def id(self) -> str: ...

    @property
    def company_id(self) -> uuid.UUID: ...

    @property
    def cost_key(self) -> str: ...

    @property
    def occurred_at(self) -> int: ...

    @property
    def minutes(self) -> int: ...

    @property
    def interview_id(self) -> str | None: ...

    @property
    def is_test(self) -> bool: ...

    @property
    def credits(self) -> int | None: ...


class NewEventRow(CountedRow, Protocol):
    """What insert_events needs of an event: what counting needs, its focus and price."""

    @property
    def agent_focus(self) -> str | None: ...

    @property
    def pricing_rule_id(self) -> uuid.UUID | None: ...

    @property
    def received_at(self) -> int: ...


# id, company id, is_test, first event id, first counted at, first cost key
NewInterview = tuple[str, uuid.UUID, bool, str | None, int | None, str | None]


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


# Set in a session's info once its transaction holds its companies' locks.
COMPANIES_LOCKED = "tally.companies_locked"


def lock_companies(session: Session, company_ids: Iterable[uuid.UUID]) -> None:
    """Lock the rows of the companies a write touches, until its transaction ends.

    Everything a batch updates in place (running totals, usage pairs, an
    interview's first counted event) belongs to one company, so two writes
    that share no company never touch the same row and commit in parallel,
    in one process or many, on one machine or several. Row locks cost no
    entry in PostgreSQL's shared lock table (an advisory lock per company
    would), and taking them in id order in one statement means two batches
    never wait for each other in a cycle. FOR NO KEY UPDATE does not block
    inserts of rows referencing the company. SQLite already runs one
    writing transaction at a time (BEGIN IMMEDIATE).
    """
    ids = sorted(set(company_ids), key=lambda value: value.int)
    # Reads in this transaction see totals no fold can change meanwhile
    # (a fold takes these locks too; tally.usage.fold).
    session.info[COMPANIES_LOCKED] = True
    if ids and session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(companies.c.id)
            .where(companies.c.id.in_(ids))
            .order_by(companies.c.id)
            .with_for_update(key_share=True)
        )


def stored_events(session: Session, ids: Sequence[str]) -> dict[str, Row[Any]]:
    found: dict[str, Row[Any]] = {}
    for part in chunks(ids):
        for row in session.execute(select(events).where(events.c.id.in_(part))):
            found[row.id] = row
    return found


def stored_interviews(session: Session, ids: Sequence[str]) -> dict[str, Row[Any]]:
    found: dict[str, Row[Any]] = {}
    for part in chunks(ids):
        for row in session.execute(select(interviews).where(interviews.c.id.in_(part))):
            found[row.id] = row
    return found


EVENT_COLUMNS = (
    "id",
    "company_id",
    "cost_key",
    "occurred_at",
    "minutes",
    "interview_id",
    "is_test",
    "agent_focus",
    "credits",
    "pricing_rule_id",
    "received_at",
    "voided_at",
)
INTERVIEW_COLUMNS = (
    "id",
    "company_id",
    "is_test",
    "first_event_id",
    "first_counted_at",
    "first_cost_key",
)


def insert_events(session: Session, rows: Sequence[NewEventRow]) -> None:
    """Insert new events (already checked to be new) in one executemany."""
    driver = Driver(session)
    driver.executemany(
        driver.insert("usage_events", EVENT_COLUMNS),
        [
            (
                row.id,
                driver.uuid(row.company_id),
                row.cost_key,
                row.occurred_at,
                row.minutes,
                row.interview_id,
                driver.flag(row.is_test),
                row.agent_focus,
                row.credits,
                driver.uuid(row.pricing_rule_id),
                row.received_at,
                None,
            )
            # In id order: two transactions inserting a shared new id wait
            # for one another instead of deadlocking (tally.db.failures).
            for row in sorted(rows, key=lambda row: row.id)
        ],
    )


def insert_interviews(session: Session, rows: Sequence[NewInterview]) -> None:
    driver = Driver(session)
    driver.executemany(
        driver.insert("interviews", INTERVIEW_COLUMNS),
        [
            (row[0], driver.uuid(row[1]), driver.flag(row[2]), row[3], row[4], row[5])
            for row in sorted(rows)
        ],
    )


def set_first_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Rows of {b_id, first_event_id, first_counted_at, first_cost_key}."""
    if rows:
        session.execute(
            update(interviews)
            .where(interviews.c.id == bindparam("b_id"))
            .values(
                first_event_id=bindparam("first_event_id"),
                first_counted_at=bindparam("first_counted_at"),
                first_cost_key=bindparam("first_cost_key"),
            ),
            rows,
            execution_options={"synchronize_session": False},
        )


def apply_bucket_deltas(session: Session, deltas: BucketDeltas) -> None:
    """Record the changes in the request's transaction: the one entry point for
    ingestion, voids and the importer.

    Appends one usage_deltas row per (company, cost key, hour) with a change,
    in one executemany (tally.usage.fold moves them into the running totals
    later; readers add them meanwhile). With TALLY_USAGE_FOLD_INLINE the
    running totals are shifted here instead, as before the tail existed.
    """
    if get_settings().usage_fold_inline:
        units.lock_for_inline_writes(session)
        shift_running_totals(session, deltas)
        return
    rows = deltas.hour_rows()
    if not rows:
        return
    driver = Driver(session)
    driver.executemany(
        driver.insert("usage_deltas", DELTA_COLUMNS),
        [(driver.uuid(key[0]), key[1], key[2], *sums) for key, sums in rows],
    )


DELTA_COLUMNS = (
    "company_id",
    "cost_key",
    "hour_start",
    "events",
    "minutes",
    "credits",
    "interviews",
)


def shift_running_totals(
    session: Session, deltas: BucketDeltas, table: str = "usage_buckets"
) -> None:
    """Add the changes to the running totals (see tally.usage.buckets).

    `table` is usage_buckets, or `tally verify`'s recomputed copy (then the
    pairs and the units' totals are left alone). Into usage_buckets, the
    same changes go to the units' totals (tally.usage.units) and any new
    pair to usage_pairs.
    """
    changes = deltas.changes()
    if not changes:
        return
    driver = Driver(session)
    running.shift(session, changes, table, "company_id", driver.uuid)
    if table != "usage_buckets":
        return
    units.shift_from_stage(session)
    driver.executemany(
        driver.insert("usage_pairs", ("company_id", "cost_key"), _PAIR_CONFLICT),
        [(driver.uuid(company_id), cost_key) for company_id, cost_key in deltas.pairs()],
    )


_PAIR_CONFLICT = " ON CONFLICT (company_id, cost_key) DO NOTHING"


def shift_from_tail(session: Session, tail: str) -> None:
    """Add a table of hourly changes (a fold's tail rows, tally.usage.fold) to
    the running totals, set-based: summed per bucket at every granularity in
    SQL (the periods of its distinct hours computed here), staged, applied to
    usage_buckets and, summed per billing system, to the units' totals; its
    new pairs go to usage_pairs."""
    connection = session.connection()
    _calendar(session, tail)
    stage = running.prepare(session, "usage_buckets", "company_id")
    levels = " UNION ALL ".join(
        _LEVEL_FROM_TAIL.format(granularity=granularity, bucket=bucket, period=period, tail=tail)
        for granularity, bucket, period in _LEVELS
    )
    connection.exec_driver_sql(f"INSERT INTO {stage} ({running.STAGE_COLUMNS}) {levels}")
    running.apply(session, "usage_buckets", "company_id")
    units.shift_from_stage(session)
    connection.exec_driver_sql(
        "INSERT INTO usage_pairs (company_id, cost_key)"  # noqa: S608 - constants
        f" SELECT DISTINCT company_id, cost_key FROM {tail} WHERE 1 = 1{_PAIR_CONFLICT}"
    )


# The periods of a fold's distinct hours: their day and month, and where those end.
HOURS = "tally_fold_hours"
_HOURS_COLUMNS = (
    " (hour BIGINT PRIMARY KEY, day BIGINT NOT NULL, day_end BIGINT NOT NULL,"
    " month BIGINT NOT NULL, month_end BIGINT NOT NULL)"
)
# One level of the changes: the tail's sums per bucket, non-zero only.
_LEVEL_FROM_TAIL = (
    "SELECT t.company_id, t.cost_key, {granularity}, {bucket}, {period},"  # noqa: S608
    f" {running.SUMS} FROM {{tail}} t JOIN {HOURS} h ON h.hour = t.hour_start"
    f" GROUP BY t.company_id, t.cost_key, {{bucket}} {running.NON_ZERO}"
)
# (granularity, the bucket's start, its period [low, high) as two columns)
_LEVELS = (
    (HOUR, "t.hour_start", "MIN(h.day), MIN(h.day_end)"),
    (DAY, "h.day", "MIN(h.month), MIN(h.month_end)"),
    (MONTH, "h.month", f"{BEGINNING}, {FOREVER}"),
)


def _calendar(session: Session, tail: str) -> None:
    driver = Driver(session)
    driver.empty_temp_table(HOURS, columns=_HOURS_COLUMNS)
    distinct = f"SELECT DISTINCT hour_start FROM {tail}"  # noqa: S608 - tally's own name
    hours = session.connection().exec_driver_sql(distinct).scalars()
    rows = []
    for hour in hours:
        day, day_end = period(HOUR, int(hour))
        rows.append((int(hour), day, day_end, *period(DAY, day)))
    driver.executemany(driver.insert(HOURS, ("hour", "day", "day_end", "month", "month_end")), rows)


def get_event(session: Session, event_id: str) -> Row[Any, Any, Any] | None:
    return session.execute(select(events).where(events.c.id == event_id)).first()


def mark_voided(session: Session, event_id: str, at: int) -> None:
    session.execute(update(events).where(events.c.id == event_id).values(voided_at=at))


def _code_point_order(session: Session, column: Any) -> Any:
    return column.collate("C") if session.get_bind().dialect.name == "postgresql" else column


def first_counted_event(session: Session, interview_id: str) -> Row[Any, Any, Any] | None:
    """The interview's earliest event that is neither a test nor voided."""
    return session.execute(
        select(events.c.id, events.c.occurred_at, events.c.cost_key)
        .where(
            events.c.interview_id == interview_id,
            events.c.is_test.is_(False),
            events.c.voided_at.is_(None),
        )
        # Code-point order of ids, as ingestion compares them in Python
        # (PostgreSQL's default collation may order them otherwise).
        .order_by(events.c.occurred_at, _code_point_order(session, events.c.id))
        .limit(1)
    ).first()
