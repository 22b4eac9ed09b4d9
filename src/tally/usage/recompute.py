"""The aggregates recomputed from usage_events alone, into temporary tables.

Everything heavy runs in SQL: per-bucket sums of hours by GROUP BY over the
counted events, each interview's first counted event by a window function,
days and months summed from the hours, then the running totals the stored
rows carry (see tally.usage.buckets) by a window sum over each period. UTC
calendar months come from a small table (one row per distinct day) filled in
Python by tally.usage.buckets, so Python never holds the events.

The running totals are computed for every bucket that has usage and for
every bucket stored, so that a stored row left behind by a void is checked
too. A running total that is all zeros counts as absent: a reader that finds
no row in a period takes zero, the same answer.

Instants are floored with `x - ((x % step) + step) % step`: SQL's `%`
truncates towards zero, so this is the floor for pre-1970 instants too, the
same as Python's `%` in tally.usage.buckets.
"""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
    type_coerce,
    union,
    union_all,
)
from sqlalchemy.orm import Session

from tally.core.instants import MICROS_PER_DAY, MICROS_PER_HOUR
from tally.usage.buckets import DAY, GRANULARITIES, HOUR, MONTH, floor_month
from tally.usage.repository import buckets, chunks, events

COUNTERS = ("events", "minutes", "credits", "interviews")
BUCKET_KEY = ("company_id", "cost_key", "granularity", "bucket_start")
FIRST = ("company_id", "is_test", "first_event_id", "first_counted_at", "first_cost_key")

_temp = MetaData()


def _bucket_table(name: str, *period: Column[Any]) -> Table:
    return Table(
        name,
        _temp,
        Column("company_id", Uuid, primary_key=True),
        Column("cost_key", String(64), primary_key=True),
        Column("granularity", SmallInteger, primary_key=True),
        # In the sums: the start of the bucket's period, so that the primary
        # key is already in the order of the running totals' window.
        *period,
        Column("bucket_start", BigInteger, primary_key=True),
        *(Column(name, BigInteger, nullable=False) for name in COUNTERS),
        prefixes=["TEMPORARY"],
    )


# What each bucket adds on its own; then the running totals the stored rows hold.
_sums = _bucket_table("tally_verify_sums", Column("period", BigInteger, primary_key=True))
expected_buckets = _bucket_table("tally_verify_buckets")
expected_pairs = Table(
    "tally_verify_pairs",
    _temp,
    Column("company_id", Uuid, primary_key=True),
    Column("cost_key", String(64), primary_key=True),
    prefixes=["TEMPORARY"],
)
expected_interviews = Table(
    "tally_verify_interviews",
    _temp,
    Column("id", String(128), primary_key=True),
    Column("company_id", Uuid, nullable=False),
    Column("is_test", Boolean, nullable=False),
    Column("first_event_id", String(128)),
    Column("first_counted_at", BigInteger),
    Column("first_cost_key", String(64)),
    prefixes=["TEMPORARY"],
)
# The month of every day with usage or a stored day row: at most 366 rows a year.
_calendar = Table(
    "tally_verify_calendar",
    _temp,
    Column("day_start", BigInteger, primary_key=True),
    Column("month_start", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


def micros(column: Any) -> Any:
    """A UtcMicros column as its plain integer (no datetime conversion)."""
    return type_coerce(column, BigInteger)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _constant(value: int) -> ColumnElement[int]:
    return literal_column(str(value))


def _floor(value: Any, step: int) -> Any:
    size = _constant(step)
    return value - ((value % size) + size) % size


def _counted() -> ColumnElement[bool]:
    return and_(events.c.is_test.is_(False), events.c.voided_at.is_(None))


def _fill_interviews(session: Session) -> None:
    """Each interview's earliest counted event by (occurred_at, id), if any."""
    uncounted = case((_counted(), 0), else_=1)
    # Code-point order of ids, as ingestion compares them in Python.
    event_id = events.c.id.collate("C") if is_postgres(session) else events.c.id
    at = micros(events.c.occurred_at)
    rank = func.row_number().over(
        partition_by=events.c.interview_id, order_by=(uncounted, at, event_id)
    )
    ranked = (
        select(
            *(events.c[name] for name in ("interview_id", "company_id", "is_test", "id")),
            at.label("at"),
            events.c.cost_key,
            uncounted.label("uncounted"),
            rank.label("rank"),
        )
        .where(events.c.interview_id.is_not(None))
        .subquery()
    )
    first = ranked.c.uncounted == 0
    rows = select(
        ranked.c.interview_id,
        ranked.c.company_id,
        ranked.c.is_test,
        *(case((first, ranked.c[name])) for name in ("id", "at", "cost_key")),
    ).where(ranked.c.rank == 1)
    session.execute(insert(expected_interviews).from_select(["id", *FIRST], rows))


def _summed(parts: Any, granularity: int, start: Any, period: Any) -> Any:
    """Sums of the parts' counters per company, cost key and bucket start."""
    keys = (parts.c.company_id, parts.c.cost_key, start)
    counters = (func.sum(parts.c[name]).label(name) for name in COUNTERS)
    columns = (_constant(granularity).label("granularity"), period, start.label("bucket_start"))
    return select(*keys[:2], *columns, *counters).group_by(*keys)


def _insert_sums(session: Session, rows: Any) -> None:
    columns = ["company_id", "cost_key", "granularity", "period", "bucket_start", *COUNTERS]
    session.execute(insert(_sums).from_select(columns, rows))


def _fill_hours(session: Session) -> None:
    """Hour sums: counted events plus interviews at their first counted event."""
    one, zero = _constant(1), _constant(0)
    interview = expected_interviews.c
    parts = union_all(
        select(
            events.c.company_id,
            events.c.cost_key,
            _floor(micros(events.c.occurred_at), MICROS_PER_HOUR).label("start"),
            one.label("events"),
            events.c.minutes,
            func.coalesce(events.c.credits, 0).label("credits"),
            zero.label("interviews"),
        ).where(_counted()),
        select(
            interview.company_id,
            interview.first_cost_key,
            _floor(interview.first_counted_at, MICROS_PER_HOUR),
            *(zero, zero, zero, one),
        ).where(interview.first_counted_at.is_not(None)),
    ).subquery()
    start = parts.c.start
    _insert_sums(session, _summed(parts, HOUR, start, _floor(start, MICROS_PER_DAY)))


def _fill_calendar(session: Session) -> None:
    """The month of every day that has usage or a stored day row."""
    days = union(
        select(_sums.c.period).where(_sums.c.granularity == HOUR),
        select(_floor(micros(buckets.c.bucket_start), MICROS_PER_DAY)).where(
            buckets.c.granularity == DAY
        ),
    )
    rows = [{"day_start": day, "month_start": floor_month(day)} for day in session.scalars(days)]
    for part in chunks(rows):
        session.execute(insert(_calendar), list(part))


def _fill_days(session: Session) -> None:
    hours = (
        select(_sums, _calendar.c.month_start)
        .join_from(_sums, _calendar, _calendar.c.day_start == _sums.c.period)
        .where(_sums.c.granularity == HOUR)
        .subquery()
    )
    # One month per day: min() only tells SQL so.
    month = func.min(hours.c.month_start)
    _insert_sums(session, _summed(hours, DAY, hours.c.period, month))


def _fill_months(session: Session) -> None:
    days = select(_sums).where(_sums.c.granularity == DAY).subquery()
    _insert_sums(session, _summed(days, MONTH, days.c.period, _constant(0)))


def _add_stored_buckets(session: Session) -> None:
    """Stored buckets without usage, with nothing of their own: their totals get checked."""
    start = micros(buckets.c.bucket_start)
    day = _floor(start, MICROS_PER_DAY)
    month = select(_calendar.c.month_start).where(_calendar.c.day_start == day)
    period = case(
        (buckets.c.granularity == HOUR, day),
        (buckets.c.granularity == DAY, month.scalar_subquery()),
        else_=_constant(0),
    )
    stored = (
        select(*(buckets.c[name] for name in BUCKET_KEY[:3]), period.label("period"))
        .add_columns(start.label("bucket_start"))
        .where(buckets.c.granularity.in_(GRANULARITIES))
        .subquery()
    )
    # The whole primary key, period included, so the probe is one seek.
    names = ("company_id", "cost_key", "granularity", "period", "bucket_start")
    same = and_(*(_sums.c[name] == stored.c[name] for name in names))
    zero = _constant(0)
    rows = select(stored, zero, zero, zero, zero).where(~exists().where(same))
    _insert_sums(session, rows)


def _fill_totals(session: Session) -> None:
    """Running totals within each period, in the order of the sums' primary key."""
    within = [_sums.c[name] for name in ("company_id", "cost_key", "granularity", "period")]
    totals = (
        func.sum(_sums.c[name]).over(partition_by=within, order_by=_sums.c.bucket_start)
        for name in COUNTERS
    )
    rows = select(*(_sums.c[name] for name in BUCKET_KEY), *totals)
    session.execute(insert(expected_buckets).from_select([*BUCKET_KEY, *COUNTERS], rows))
    # All zeros counts as absent: a reader finding no row takes zero too.
    all_zero = and_(*(expected_buckets.c[name] == 0 for name in COUNTERS))
    session.execute(delete(expected_buckets).where(all_zero))


def _fill_pairs(session: Session) -> None:
    pairs = select(_sums.c.company_id, _sums.c.cost_key).where(_sums.c.granularity == MONTH)
    pairs = pairs.distinct()
    session.execute(insert(expected_pairs).from_select(["company_id", "cost_key"], pairs))


def recompute(session: Session) -> None:
    """Fill expected_buckets, expected_pairs and expected_interviews (this connection)."""
    connection = session.connection()
    drop(session)
    for table in _temp.sorted_tables:
        table.create(connection)
    for step in (_fill_interviews, _fill_hours, _fill_calendar, _fill_days, _fill_months):
        step(session)
    for step in (_add_stored_buckets, _fill_totals, _fill_pairs):
        step(session)
    if is_postgres(session):
        for table in _temp.sorted_tables:
            session.execute(text(f"ANALYZE {table.name}"))


def drop(session: Session) -> None:
    """Remove the temporary tables (they also vanish with the connection)."""
    for table in _temp.sorted_tables:
        session.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
