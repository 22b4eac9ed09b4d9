"""A fresh database per load test (a SQLite file, or a new PostgreSQL database), migrated,
with a platform key."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tally.db.engine import Database
from tally.db.migrate import upgrade
from tests.factories import make_key
from tests.servers import BACKENDS, fresh_database


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


@pytest.fixture(params=BACKENDS)
def loaded(request: pytest.FixtureRequest) -> Iterator[Fixture]:
    with fresh_database(request, "load") as url:
        yield _prepare(url, request.param)
