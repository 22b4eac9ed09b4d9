"""Fixtures: a migrated SQLite file and a real PostgreSQL database, the app over ASGI.

Every database test runs on both backends. PostgreSQL is reached at
TALLY_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
each test session creates its own database there and drops it at the end.
Without a server the PostgreSQL half is skipped, with the command to start
one, unless CI=true or TALLY_TEST_REQUIRE_POSTGRES=1, where it fails.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tally.app import create_app
from tally.db.engine import Database
from tally.db.migrate import upgrade
from tally.db.models import Base
from tally.settings import Settings
from tests.factories import Api

PG_ADMIN_URL = os.environ.get(
    "TALLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
BACKENDS = ["sqlite", "postgresql"]


def _postgres_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("TALLY_TEST_REQUIRE_POSTGRES") == "1"


def _admin_conninfo() -> str:
    return make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(False)


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    try:
        admin = psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc}); start it: {START_PG}"
        if _postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    name = f"tally_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "tally.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated(request: pytest.FixtureRequest) -> Callable[[str], Database]:
    """Per backend, one migrated database for the whole session."""
    cache: dict[str, Database] = {}

    def get(backend: str) -> Database:
        if backend not in cache:
            url = request.getfixturevalue(f"{backend}_url")
            upgrade(url)
            cache[backend] = Database(url)
        return cache[backend]

    yield get  # type: ignore[misc]
    for database in cache.values():
        database.dispose()


def wipe(database: Database) -> None:
    """Delete every row, children first."""
    with database.transaction(write=True) as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(text(f"DELETE FROM {table.name}"))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, migrated: Callable[[str], Database]) -> Database:
    database = migrated(request.param)
    wipe(database)
    return database


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    # No background folding: tests wipe the database between examples, which
    # a fold committing meanwhile would race; tests fold where they choose
    # (tests/usage/test_fold.py), and every read here adds the unfolded tail.
    app = create_app(Settings(database_url=db.url, usage_folder=False), database=db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, db: Database) -> Api:
    """The API with a freshly created platform key holding every scope."""
    return Api.bootstrap(client, db)
