"""Engines for the SQLite default and PostgreSQL, and the per-request transaction."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tally.db import failures
from tally.errors import ServiceUnavailable

T = TypeVar("T")
# Bounded waits of a process that does not say otherwise (the CLI, tests).
DEFAULT_WAIT_SECONDS = 30.0


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and route them to psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine, wait_seconds: float) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the
    # write lock up front; tally issues BEGIN itself so that writing
    # transactions take it immediately instead of failing on upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # Checkpoint every ~40 MB of WAL instead of 4 MB: pages rewritten by
        # consecutive batches (the newest bucket of each company) then reach
        # the database file once per checkpoint instead of once per commit.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA journal_size_limit=67108864")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit is on disk before the answer goes out.
        cursor.execute("PRAGMA synchronous=FULL")
        # A writer of another process (the CLI, another server process) is
        # waited for this long, then the request gets 503 (tally.db.failures).
        cursor.execute(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
        # 12 MB of page cache per connection (the default is 2 MB); with at
        # most 8 + 1 connections that bounds page caches to 108 MB.
        cursor.execute("PRAGMA cache_size=-12000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _configure_postgresql(engine: Engine, wait_seconds: float) -> None:
    # No lock is waited for longer than this (a batch's company rows held by
    # another process); past it the statement fails and the request gets 503.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(wait_seconds * 1000)}")
            # psycopg prepares a statement run five times; PostgreSQL then plans
            # it once for any parameters (a generic plan) after five more. For
            # `id IN ($1 ... $1000)` (a batch's duplicate check) that plan was a
            # sequential scan of usage_events: batches went from 0.1 s to 3 s
            # and kept slowing as the table grew (docs/performance.md). Every
            # execution is planned for its own values instead; psycopg still
            # saves the parsing.
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


def build_engine(url: str, wait_seconds: float = DEFAULT_WAIT_SECONDS, **kwargs: Any) -> Engine:
    """An engine whose every wait (pool, locks, connecting) ends within wait_seconds."""
    url = normalise_url(url)
    # Statement parameters (keys' digests, names) never reach a log or an error text.
    kwargs = {"hide_parameters": True} | kwargs
    if url.startswith("sqlite"):
        # SQLite runs one writer at a time and the machine's cores bound its
        # readers: a fixed pool keeps the page caches (and memory) bounded.
        options = {"pool_size": 8, "max_overflow": 0, "pool_timeout": wait_seconds} | kwargs
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)
        _configure_sqlite(engine, wait_seconds)
        return engine
    options = {
        "pool_size": 10,
        "max_overflow": 10,
        "pool_pre_ping": True,
        "pool_timeout": wait_seconds,
    } | kwargs
    connect = {"connect_timeout": max(1, int(wait_seconds))}
    engine = create_engine(url, connect_args=connect, **options)
    _configure_postgresql(engine, wait_seconds)
    return engine


class Database:
    """One engine and the two session factories (reading and writing)."""

    def __init__(self, url: str, *, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self.url = normalise_url(url)
        self.wait_seconds = wait_seconds
        self.engine = build_engine(self.url, wait_seconds)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(write_engine, expire_on_commit=False)
        # One connection for the event loop's own tiny reads (authentication):
        # the loop is a single thread, so it never waits for this pool, and
        # these reads skip the hop to a worker thread.
        # Connecting must not stall the loop for long: a short timeout. No
        # ping before each use (a round trip during which the loop serves
        # nobody): a connection found broken answers one request 503
        # (tally.db.failures) and the pool replaces it.
        # On PostgreSQL in autocommit: a lookup is one round trip, not three
        # (BEGIN, SELECT, COMMIT), and the loop blocks that much less.
        loop_options: dict[str, Any] = {} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
        self.loop_engine = build_engine(
            self.url,
            min(wait_seconds, 2.0),
            pool_size=1,
            max_overflow=0,
            pool_pre_ping=False,
            **loop_options,
        )
        self._loop = sessionmaker(self.loop_engine, expire_on_commit=False)

    def session(self, *, write: bool) -> Session:
        """A session whose transaction begins at its first statement (no I/O here)."""
        session = (self._write if write else self._read)()
        session.begin()
        return session

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error."""
        factory = self._write if write else self._read
        with factory() as session, session.begin():
            yield session

    def write(self, work: Callable[[Session], T], *, lock_timeout: float | None = None) -> T:
        """Run `work` in one writing transaction, begin to COMMIT, in the calling thread.

        The transaction never needs another thread or connection to finish,
        so whoever holds its locks always gets to release them. A collision
        with another company's concurrent batch (the same new event or
        interview id; a deadlock PostgreSQL broke) retries the whole
        transaction once: it then sees the other's committed rows and answers
        as for any stored row. `lock_timeout` (seconds) shortens this
        transaction's lock waits on PostgreSQL to what is left of a request's
        budget.
        """
        for attempt in (1, 2):
            try:
                with self.transaction(write=True) as session:
                    if lock_timeout is not None and not self.is_sqlite:
                        milliseconds = f"{max(1, int(lock_timeout * 1000))}ms"
                        session.execute(select(func.set_config("lock_timeout", milliseconds, True)))
                    return work(session)
            except Exception as exc:
                if not failures.is_collision(exc):
                    raise
                if attempt == 2:
                    raise ServiceUnavailable(
                        "concurrent writes collided; nothing was done"
                    ) from exc
        raise AssertionError("unreachable")

    @contextmanager
    def loop_read(self) -> Iterator[Session]:
        """A short read transaction for code running on the event loop itself."""
        with self._loop() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        self.loop_engine.dispose()
