"""Checking the aggregates against the raw events: `tally verify [--repair]`.

tally.usage.recompute rebuilds the aggregates from usage_events into
temporary tables; this module compares them with the stored rows by joins on
the primary keys, so only rows that differ ever reach Python, and rewrites
those rows when asked. Checked: every bucket row (running totals; a row
whose totals are all zero counts as absent), every interview's first
counted event, and that usage_pairs names every pair with usage (extra
pairs are harmless: they add zeros). Changes not yet folded (usage_deltas,
tally.usage.fold) are folded first, and a check takes whatever was appended
since out of the recomputation, so they are checked too.
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    and_,
    delete,
    exists,
    false,
    insert,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from tally.core.instants import format_instant, from_micros
from tally.core.quantities import from_scaled
from tally.db.driver import Driver
from tally.db.engine import Database
from tally.db.types import UtcMicros
from tally.plans import repository as plans
from tally.usage import fold, recompute, repository, units
from tally.usage.aggregates import BucketDeltas
from tally.usage.buckets import DAY, HOUR, MONTH
from tally.usage.models import UsageDelta, UsagePair
from tally.usage.recompute import BUCKET_KEY, COUNTERS, FIRST, micros
from tally.usage.repository import buckets, interviews
from tally.usage.running import FOLD_LOCK

Values = Mapping[Any, Any]
pairs: Table = UsagePair.__table__  # type: ignore[assignment]
deltas_table: Table = UsageDelta.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Mismatch:
    """One aggregate row whose stored value differs from the recomputed one."""

    table: str
    key: str
    stored: str
    expected: str


@dataclass(frozen=True)
class _Check:
    """A stored aggregate table, its recomputation and how to show a row of it."""

    stored: Table
    expected: Table
    key: tuple[str, ...]
    values: tuple[str, ...]
    label: Callable[[Values], str]
    describe: Callable[[Values], str]
    # Whether a stored row with no recomputed one is wrong: never, if not zero, always.
    extra: str
    # The table named in a mismatch, when `stored` is a copy of it.
    name: str = ""

    def same_key(self) -> ColumnElement[bool]:
        return and_(*(self.stored.c[name] == self.expected.c[name] for name in self.key))

    def same_values(self) -> ColumnElement[bool]:
        both = ((self.stored.c[name], self.expected.c[name]) for name in self.values)
        return and_(true(), *(mine.is_not_distinct_from(theirs) for mine, theirs in both))

    def extra_is_wrong(self) -> ColumnElement[bool]:
        if self.extra == "if not zero":
            return or_(*(self.stored.c[name] != 0 for name in self.values))
        return true() if self.extra == "always" else false()


def _plain(column: Any) -> Any:
    return micros(column) if isinstance(column.type, UtcMicros) else column


def _columns(table: Table, names: tuple[str, ...], prefix: str) -> list[Any]:
    return [_plain(table.c[name]).label(prefix + name) for name in names]


def _bucket_label(key: Values) -> str:
    start, granularity = from_micros(key["bucket_start"]), key["granularity"]
    when = {HOUR: f"hour {format_instant(start)}", DAY: f"day {start:%Y-%m-%d}"}
    when[MONTH] = f"month {start:%Y-%m}"
    what = when.get(granularity, f"granularity {granularity} {format_instant(start)}")
    return f"company {key['company_id']} {key['cost_key']} {what}"


def _totals(values: Values) -> str:
    return (
        f"events={values['events']} minutes={from_scaled(values['minutes'])} "
        f"credits={from_scaled(values['credits'])} interviews={values['interviews']}"
    )


def _first(values: Values) -> str:
    owner = f"company {values['company_id']} isTest={str(bool(values['is_test'])).lower()}"
    if values["first_counted_at"] is None:
        return f"{owner}, no counted event"
    at = format_instant(from_micros(values["first_counted_at"]))
    return f"{owner}, first {values['first_event_id']} at {at} ({values['first_cost_key']})"


_CHECKS = (
    _Check(
        interviews,
        recompute.expected_interviews,
        ("id",),
        FIRST,
        lambda key: f"interview {key['id']}",
        _first,
        "always",
    ),
    _Check(
        buckets,
        recompute.expected_buckets,
        BUCKET_KEY,
        COUNTERS,
        _bucket_label,
        _totals,
        "if not zero",
    ),
    _Check(
        pairs,
        recompute.expected_pairs,
        ("company_id", "cost_key"),
        (),
        lambda key: f"company {key['company_id']} {key['cost_key']}",
        lambda values: "present",
        "never",
    ),
)


def _side(check: _Check, row: Values, prefix: str) -> str:
    """One side of a joined row as text, or "absent"."""
    if row.get(prefix + check.key[0]) is None:
        return "absent"
    return check.describe({name: row[prefix + name] for name in check.values})


def _mismatches(session: Session, check: _Check) -> list[Mismatch]:
    """Recomputed rows stored wrong or not at all, then stored rows that should not be."""
    stored, expected, names = check.stored, check.expected, check.key + check.values
    wrong = (
        select(*_columns(expected, check.key, "k_"), *_columns(expected, names, "e_"))
        .add_columns(*_columns(stored, names, "s_"))
        .select_from(expected.outerjoin(stored, check.same_key()))
        .where(or_(stored.c[check.key[0]].is_(None), ~check.same_values()))
    )
    extra = select(*_columns(stored, check.key, "k_"), *_columns(stored, names, "s_")).where(
        ~exists().where(check.same_key()), check.extra_is_wrong()
    )
    found: list[Mismatch] = []
    for query in (wrong, extra):
        for row in session.execute(query).mappings():
            shown = [_side(check, row, prefix) for prefix in ("s_", "e_")]
            key = {name: row["k_" + name] for name in check.key}
            found.append(Mismatch(check.name or check.stored.name, check.label(key), *shown))
    return found


def _rewrite(session: Session, check: _Check) -> None:
    """Delete every stored row that differs, then insert every recomputed row missing."""
    stored, expected = check.stored, check.expected
    session.execute(
        delete(stored).where(
            ~exists().where(check.same_key(), check.same_values()),
            or_(exists().where(check.same_key()), check.extra_is_wrong()),
        )
    )
    columns = [*check.key, *check.values]
    missing = select(*(expected.c[name] for name in columns))
    missing = missing.where(~exists().where(check.same_key()))
    session.execute(insert(stored).from_select(columns, missing))


def _lock_writers(session: Session) -> None:
    """On PostgreSQL, hold off folds, ingestion and voids until the repair commits.

    Without it a batch committed between the recomputation and the rewrite
    would have its changes overwritten. The fold lock first (a fold that
    holds it waits for no table lock of ours), then the tables in the order
    writers write them. SQLite's BEGIN IMMEDIATE (a writing transaction)
    already excludes every other writer.
    """
    if recompute.is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FOLD_LOCK})
        tables = "usage_events, interviews, usage_buckets, usage_pairs, usage_deltas"
        tables += ", usage_unit_buckets"
        session.execute(text(f"LOCK TABLE {tables} IN SHARE MODE"))


_folded_meta = MetaData()
# A check's copy of usage_buckets with the unfolded tail applied, as a fold would.
folded_buckets = Table(
    "tally_verify_folded",
    _folded_meta,
    Column("company_id", Uuid, primary_key=True),
    Column("cost_key", String(64), primary_key=True),
    Column("granularity", SmallInteger, primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True),
    *(Column(name, BigInteger, nullable=False) for name in COUNTERS),
    prefixes=["TEMPORARY"],
)


def _tail_deltas(session: Session) -> BucketDeltas:
    deltas = BucketDeltas()
    rows = Driver(session).fetchall(
        "SELECT company_id, cost_key, hour_start, SUM(events), SUM(minutes), SUM(credits),"
        " SUM(interviews) FROM usage_deltas GROUP BY company_id, cost_key, hour_start",
        [],
    )
    for company, cost_key, hour, *sums in rows:
        company_id = uuid.UUID(hex=company) if isinstance(company, str) else company
        deltas.add((company_id, cost_key, int(hour)), [int(value) for value in sums])
    return deltas


def _checks_with_tail(session: Session) -> tuple[_Check, ...]:
    """The checks of a snapshot that still has unfolded changes (check only).

    The recomputation counts every event; the stored totals lack what is
    still in usage_deltas (readers add it). So the buckets are compared as a
    fold would leave them: a temporary copy of usage_buckets with the tail
    shifted in, exactly as tally.usage.fold does. A pair whose only usage is
    in the tail is not in usage_pairs yet (its fold adds it).
    """
    deltas = _tail_deltas(session)
    if not deltas.hours:
        return _CHECKS
    connection = session.connection()
    folded_buckets.drop(connection, checkfirst=True)
    folded_buckets.create(connection)
    columns = [*BUCKET_KEY, *COUNTERS]
    session.execute(
        insert(folded_buckets).from_select(
            columns, select(*(_plain(buckets.c[name]) for name in columns))
        )
    )
    repository.shift_running_totals(session, deltas, folded_buckets.name)
    expected_pairs = recompute.expected_pairs
    stored_pair = exists().where(
        pairs.c.company_id == expected_pairs.c.company_id,
        pairs.c.cost_key == expected_pairs.c.cost_key,
    )
    tail_pair = exists().where(
        deltas_table.c.company_id == expected_pairs.c.company_id,
        deltas_table.c.cost_key == expected_pairs.c.cost_key,
    )
    session.execute(delete(expected_pairs).where(~stored_pair, tail_pair))
    return tuple(
        replace(item, stored=folded_buckets, name=buckets.name) if item.stored is buckets else item
        for item in _CHECKS
    )


def _counters(sums: Sequence[int] | None) -> str:
    if sums is None:
        return "absent"
    events, minutes, credits, interviews = sums
    return (
        f"change events={events} minutes={from_scaled(minutes)} "
        f"credits={from_scaled(credits)} interviews={interviews}"
    )


def _unit_mismatches(session: Session, tail: BucketDeltas | None) -> list[Mismatch]:
    """The units' totals against the recomputed companies' (tally.usage.units),
    compared as changes per bucket; `tail`: changes the stored totals lack."""
    expected = units.expected_changes(session, recompute.expected_buckets.name)
    stored = units.stored_changes(session)
    if tail is not None:
        for key, sums in units.to_units(session, tail.changes()):
            into = stored.setdefault(key, [0, 0, 0, 0])
            for index in range(4):
                into[index] += sums[index]
        stored = {key: sums for key, sums in stored.items() if any(sums)}
    found = []
    for key in sorted(expected.keys() | stored.keys()):
        mine, theirs = stored.get(key), expected.get(key)
        if mine != theirs:
            unit, cost_key, granularity, start = key
            label = _bucket_label(
                {"company_id": "", "cost_key": cost_key, "granularity": granularity}
                | {"bucket_start": start}
            ).replace("company  ", f"{unit} ")
            found.append(Mismatch(units.TABLE, label, _counters(mine), _counters(theirs)))
    return found


def check(session: Session, *, fix: bool) -> list[Mismatch]:
    """Every aggregate row that differs from a recomputation; with fix, rewrite them."""
    if fix:
        _lock_writers(session)
        # Everything into the totals first, so the repair rewrites them whole.
        fold.fold_all(session, lock=False)
    else:
        # Totals and tail of one moment (nothing in a REPEATABLE READ snapshot).
        fold.hold_off_folds(session)
    recompute.recompute(session)
    checks = _CHECKS if fix else _checks_with_tail(session)
    found = [mismatch for item in checks for mismatch in _mismatches(session, item)]
    unit_found = _unit_mismatches(session, None if fix else _tail_deltas(session))
    if fix and found:
        for item in _CHECKS:
            _rewrite(session, item)
        # The outbox counted periods' usage from the totals just rewritten.
        plans.forget_used(session)
    if fix and (found or unit_found):
        units.rebuild(session)
    found += unit_found
    recompute.drop(session)
    session.execute(text(f"DROP TABLE IF EXISTS {folded_buckets.name}"))
    return sorted(found, key=lambda mismatch: (mismatch.table, mismatch.key))


def find_mismatches(session: Session) -> list[Mismatch]:
    """Every bucket and interview row that differs from a recomputation."""
    return check(session, fix=False)


def repair(session: Session) -> int:
    """Rewrite the aggregates from the raw events; the number of rows changed."""
    return len(check(session, fix=True))


def run(database: Database, *, fix: bool) -> list[Mismatch]:
    """One consistent pass: a snapshot to check, or the write lock to repair.

    Either way the tail is folded first (a check folds in a transaction of
    its own, then accounts for whatever was appended since).
    """
    if not fix:
        database.write(fold.fold_all)
    with database.transaction(write=fix) as session:
        if not fix and recompute.is_postgres(session):
            # One snapshot for every statement, so concurrent ingestion cannot
            # show up as a mismatch (SQLite's read transaction is one already).
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            fold.mark_snapshot(session)
        return check(session, fix=fix)
