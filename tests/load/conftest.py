"""A fresh database per load test (a SQLite file, or a new PostgreSQL database), migrated,
with a platform key."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tally.db.engine import Database
from tally.db.migrate import upgrade
from tests.factories import make_key


@dataclass
class Fixture:
    url: str
    backend: str
    key: str


def _prepare(url: str, backend: str) -> Fixture:
    upgrade(url)
    database = Database(url)
    try:
        key = make_key(database, kind="platform", scopes=["admin", "write:usage", "read:billing"])
    finally:
        database.dispose()
    return Fixture(url, backend, key)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fixture]:
    if request.param == "sqlite":
        yield _prepare(f"sqlite:///{tmp_path / 'load.db'}", "sqlite")
        return
    server = make_url(request.getfixturevalue("postgresql_url"))
    name = f"tally_load_{uuid.uuid4().hex[:12]}"
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            url = server.set(database=name).render_as_string(hide_password=False)
            yield _prepare(url, "postgresql")
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
