"""Engines for the SQLite default and PostgreSQL, and the per-request transaction."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and route them to psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine) -> None:
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
        cursor.execute("PRAGMA busy_timeout=30000")
        # 12 MB of page cache per connection (the default is 2 MB); with at
        # most 8 + 1 connections that bounds page caches to 108 MB.
        cursor.execute("PRAGMA cache_size=-12000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def build_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    # Statement parameters (keys' digests, names) never reach a log or an error text.
    kwargs = {"hide_parameters": True} | kwargs
    if url.startswith("sqlite"):
        # SQLite runs one writer at a time and the machine's cores bound its
        # readers: a fixed pool keeps the page caches (and memory) bounded.
        options = {"pool_size": 8, "max_overflow": 0, "pool_timeout": 60} | kwargs
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)
        _configure_sqlite(engine)
        return engine
    options = {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True} | kwargs
    return create_engine(url, **options)


class Database:
    """One engine and the two session factories (reading and writing)."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = build_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(write_engine, expire_on_commit=False)
        # One connection for the event loop's own tiny reads (authentication):
        # the loop is a single thread, so it never waits for this pool, and
        # these reads skip the hop to a worker thread.
        self.loop_engine = build_engine(self.url, pool_size=1, max_overflow=0)
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

    @contextmanager
    def loop_read(self) -> Iterator[Session]:
        """A short read transaction for code running on the event loop itself."""
        with self._loop() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        self.loop_engine.dispose()
