"""Where a benchmark database lives: a SQLite file or a PostgreSQL database.

Built databases are cached (bench/data/ for SQLite files and every meta
file, PostgreSQL databases named tally_bench_<size>_<seed>). Everything
that writes (ingestion, import, the storage limit, API keys) runs on a
scratch copy, dropped afterwards, so the cache keeps exactly its history.
"""

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.config import Config

COPY_ATTEMPTS = 24


@dataclass(frozen=True)
class Place:
    """One database: its backend, SQLAlchemy URL and file path or database name."""

    backend: str
    url: str
    name: str
    admin_url: str = ""

    @property
    def path(self) -> Path:
        return Path(self.name)


def _pg_conninfo(admin_url: str) -> str:
    return make_url(admin_url).set(drivername="postgresql").render_as_string(False)


def _pg_place(admin_url: str, name: str) -> Place:
    url = make_url(admin_url).set(database=name).render_as_string(False)
    return Place("postgresql", url, name, admin_url)


def _sqlite_place(path: Path) -> Place:
    return Place("sqlite", f"sqlite:///{path}", str(path))


def cached(config: Config, backend: str, size: int) -> Place:
    """The cached database of this backend, size and seed."""
    if backend == "sqlite":
        return _sqlite_place(config.data_dir / f"sqlite-{size}-{config.seed}.db")
    suffix = f"_{config.tag}" if config.tag else ""
    return _pg_place(config.pg_admin_url, f"tally_bench_{size}_{config.seed}{suffix}")


def meta_path(config: Config, place: Place) -> Path:
    if place.backend == "sqlite":
        return place.path.with_suffix(".json")
    return config.data_dir / f"postgresql-{place.name}.json"


def _admin(place: Place) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(_pg_conninfo(place.admin_url), autocommit=True, connect_timeout=5)


def exists(place: Place) -> bool:
    if place.backend == "sqlite":
        return place.path.exists()
    with _admin(place) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (place.name,))
        return found.fetchone() is not None


def _sqlite_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def drop(place: Place) -> None:
    """Delete the database; only ever called on tally_bench_ names and bench files."""
    if place.backend == "sqlite":
        for file in _sqlite_files(place.path):
            file.unlink(missing_ok=True)
        return
    assert place.name.startswith("tally_bench_"), place.name
    with _admin(place) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(place.name))
        )


def create(place: Place) -> None:
    """An empty database (PostgreSQL) or the directory of the file (SQLite)."""
    drop(place)
    if place.backend == "sqlite":
        place.path.parent.mkdir(parents=True, exist_ok=True)
        return
    with _admin(place) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(place.name)))


def checkpoint(place: Place) -> None:
    """Fold SQLite's write-ahead log into the file, so a file copy is complete."""
    if place.backend != "sqlite":
        return
    connection = sqlite3.connect(place.path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def scratch_copy(source: Place) -> Place:
    """A copy of a database to write into; nobody may be connected to the source."""
    if source.backend == "sqlite":
        target = _sqlite_place(source.path.with_name(source.path.stem + "-work.db"))
        drop(target)
        checkpoint(source)
        shutil.copyfile(source.path, target.path)
        return target
    target = _pg_place(source.admin_url, source.name + "_work")
    drop(target)
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(target.name), sql.Identifier(source.name)
    )
    # Autovacuum may still be connected to a freshly built source: wait for it.
    for attempt in range(COPY_ATTEMPTS):
        try:
            with _admin(source) as admin:
                admin.execute(statement)
            return target
        except psycopg.errors.ObjectInUse:
            if attempt == COPY_ATTEMPTS - 1:
                raise
            time.sleep(5)
    return target


def reachable(admin_url: str) -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        psycopg.connect(_pg_conninfo(admin_url), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]
    return None
