"""Folding the tail of hourly changes (usage_deltas) into the running totals.

A write appends its hourly sums to usage_deltas (one executemany at the
table's tail) instead of shifting running totals across scattered pages;
`fold` later moves the rows up to a watermark into a temporary table
(deleting exactly those), and a few set-based statements sum them per
bucket at every level (many batches usually share their hours, days and
months) and shift the running totals (repository.shift_from_tail), in one
transaction. So every change is either still in the tail or in the totals,
never both and never neither, whenever a reader looks.

Readers add the unfolded rows to the totals (tally.reporting.service). They
must see the totals and the tail of one moment:

- SQLite: a read transaction is one snapshot (WAL); a fold runs as a writing
  transaction (the one writer).
- PostgreSQL: a fold takes, in order, the locks of the companies it moves
  (the row locks writers take: a writer's reads in its own transaction, such
  as the outbox's threshold check, see no fold of its companies) and then an
  exclusive transaction-level advisory lock, FOLD_LOCK. A reader at READ
  COMMITTED takes the shared form of that lock before its first read of
  totals (`hold_off_folds`), so no fold commits between its statements;
  REPEATABLE READ readers (series, CSV, `tally verify`) need none.

`Folder` runs `fold` in the background of every serving process (unless
TALLY_USAGE_FOLDER=0), whenever the tail holds TALLY_USAGE_FOLD_ROWS rows,
and at least every TALLY_USAGE_FOLD_SECONDS while it is not empty;
`tally verify` folds first.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from anyio import to_thread
from sqlalchemy import text
from sqlalchemy.orm import Session

from tally.db.admission import WriteGate
from tally.db.driver import Driver
from tally.db.engine import Database
from tally.settings import Settings
from tally.usage import repository
from tally.usage.running import FOLD_LOCK

log = logging.getLogger("tally.usage.fold")
# The most tail rows one fold moves: bounds a fold's transaction.
MAX_FOLD_ROWS = 200_000
# A session whose reads already exclude folds (a snapshot, or the fold lock).
FOLDS_HELD_OFF = "tally.folds_held_off"


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def hold_off_folds(session: Session) -> None:
    """Make every later read of this transaction see no fold commit in between.

    Nothing on SQLite (a read transaction is a snapshot), nor in a session
    marked as a snapshot or holding its companies' locks; otherwise the
    shared fold lock, until the transaction ends.
    """
    info = session.info
    if not is_postgres(session) or info.get(FOLDS_HELD_OFF):
        return
    if info.get(repository.COMPANIES_LOCKED):
        return
    session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": FOLD_LOCK})
    info[FOLDS_HELD_OFF] = True


def mark_snapshot(session: Session) -> None:
    """Tell readers of this session that it reads one snapshot (REPEATABLE READ)."""
    session.info[FOLDS_HELD_OFF] = True


def _bounds(session: Session) -> tuple[int, int] | None:
    row = session.execute(text("SELECT MIN(id), MAX(id) FROM usage_deltas")).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def tail_size(session: Session) -> int:
    """An upper bound on the rows in the tail (two index seeks, no scan)."""
    bounds = _bounds(session)
    return 0 if bounds is None else bounds[1] - bounds[0] + 1


def fold(session: Session, limit: int = MAX_FOLD_ROWS, *, lock: bool = True) -> int:
    """Move the oldest tail rows (ids up to a watermark) into the running totals.

    Runs in the caller's writing transaction; returns how many rows moved.
    `lock=False` only for a caller that already excludes every writer and
    fold (`tally verify --repair`). Set-based: the rows are moved into a
    temporary table, and a few statements sum them per bucket and shift the
    totals (repository.shift_from_tail).
    """
    bounds = _bounds(session)
    if bounds is None:
        return 0
    watermark = min(bounds[1], bounds[0] + limit - 1)
    postgres = is_postgres(session)
    driver = Driver(session)
    connection = session.connection()
    driver.empty_temp_table(TAIL, query=_TAIL_QUERY)
    where = "id <= {m}"
    params: list[Any] = [watermark]
    if lock and postgres:
        found = session.execute(
            text("SELECT DISTINCT company_id FROM usage_deltas WHERE id <= :w"), {"w": watermark}
        ).scalars()
        companies = sorted((uuid.UUID(str(item)) for item in found), key=lambda v: v.int)
        repository.lock_companies(session, companies)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FOLD_LOCK})
        # Only locked companies: a row committed since (a lower id that was
        # still in flight) may belong to a company a writer holds now.
        where += " AND company_id = ANY({m})"
        params.append(companies)
    where = where.format(m=driver.mark)
    # Exactly the rows deleted are folded: a row committed late with a lower
    # id is either deleted and folded here, or left for the next fold.
    if postgres:
        moved = connection.exec_driver_sql(
            f"WITH moved AS (DELETE FROM usage_deltas WHERE {where}"  # noqa: S608 - constants
            f" RETURNING {_TAIL_COLUMNS}) INSERT INTO {TAIL} SELECT * FROM moved",
            tuple(params),
        ).rowcount
    else:  # the one writer: nothing commits between the two statements
        connection.exec_driver_sql(
            f"INSERT INTO {TAIL} SELECT {_TAIL_COLUMNS} FROM usage_deltas WHERE {where}",  # noqa: S608
            tuple(params),
        )
        moved = connection.exec_driver_sql(
            f"DELETE FROM usage_deltas WHERE {where}",  # noqa: S608 - constants
            tuple(params),
        ).rowcount
    if moved:
        repository.shift_from_tail(session, TAIL)
    return moved


# The rows one fold moves, in a temporary table of the connection.
TAIL = "tally_fold_tail"
_TAIL_COLUMNS = "company_id, cost_key, hour_start, events, minutes, credits, interviews"
_TAIL_QUERY = f"AS SELECT {_TAIL_COLUMNS} FROM usage_deltas WHERE 1 = 0"  # noqa: S608


def fold_all(session: Session, *, lock: bool = True) -> int:
    """Fold until the tail is empty (as seen by this transaction); rows moved."""
    moved = 0
    while True:
        count = fold(session, lock=lock)
        if count == 0:
            return moved
        moved += count


class Folder:
    """The background folding of one process (see the module docstring)."""

    def __init__(
        self,
        run_write: Callable[[Callable[[Session], int]], Awaitable[int]],
        run_read: Callable[[Callable[[Session], int]], Awaitable[int]],
        rows: int,
        seconds: float,
    ) -> None:
        self.run_write = run_write
        self.run_read = run_read
        self.rows = rows
        self.seconds = seconds
        self.folded = 0
        self._stopping = asyncio.Event()

    def poll_seconds(self) -> float:
        return min(self.seconds, 0.25)

    async def run(self) -> None:
        """Fold when due until `stop`; a failed fold is logged and retried later.

        Stopped by a flag, not by cancelling the task: a fold already running
        in its thread then finishes before `run` returns, so nothing writes
        after the process's shutdown has waited for this task.
        """
        last = time.monotonic()
        while not self._stopping.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_seconds())
            if self._stopping.is_set():
                return
            try:
                size = await self.run_read(tail_size)
                due = size >= self.rows or (size > 0 and time.monotonic() - last >= self.seconds)
                if due:
                    self.folded += await self.run_write(fold)
                    last = time.monotonic()
            except Exception:  # a busy database: the next poll tries again
                log.warning("folding the usage tail failed; retrying", exc_info=True)
                last = time.monotonic()

    def stop(self) -> None:
        """Ask `run` to return after the fold in progress, if any."""
        self._stopping.set()


def background(database: Database, gate: WriteGate, settings: Settings) -> Folder:
    """A serving process's folder: folds wait for the write gate like any writer."""

    async def write(work: Callable[[Session], int]) -> int:
        deadline = gate.deadline()
        # The one writer turn on SQLite; on PostgreSQL the fold's row locks order it.
        async with gate.turn((), deadline):
            return await gate.run(
                deadline, lambda: database.write(work, lock_timeout=gate.left(deadline))
            )

    async def read(work: Callable[[Session], int]) -> int:
        def call() -> int:
            with database.transaction(write=False) as session:
                return work(session)

        return await to_thread.run_sync(call)

    return Folder(write, read, settings.usage_fold_rows, settings.usage_fold_seconds)
