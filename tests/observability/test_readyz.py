"""/readyz: 200 when the database answers at the latest schema, else 503 with Retry-After."""

import socket
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tally.app import create_app
from tally.db.engine import Database
from tally.settings import Settings


def test_ready_when_the_database_is_at_the_latest_schema(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["data"] == {"status": "ready"}


@pytest.fixture
def behind(db: Database) -> Iterator[Database]:
    with db.transaction(write=True) as session:
        version = session.scalar(text("SELECT version_num FROM alembic_version"))
        session.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    yield db
    with db.transaction(write=True) as session:
        session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})


def test_not_ready_when_the_schema_is_behind(behind: Database, client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert "tally migrate" in error["message"]


def test_not_ready_when_the_database_cannot_be_reached() -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:9/tally?connect_timeout=1")
    app = create_app(
        Settings(database_url=unreachable.url, ready_timeout_seconds=1.5), database=unreachable
    )
    try:
        with TestClient(app) as client:
            started = time.monotonic()
            response = client.get("/readyz")
            took = time.monotonic() - started
    finally:
        unreachable.dispose()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "127.0.0.1" not in response.text
    assert took < 3


def test_not_ready_when_the_database_does_not_answer_in_time() -> None:
    # A listener that accepts connections and never says a word: the check hangs.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        hanging = Database(f"postgresql://postgres@127.0.0.1:{port}/tally")
        app = create_app(
            Settings(database_url=hanging.url, ready_timeout_seconds=1.0), database=hanging
        )
        with TestClient(app) as client:
            started = time.monotonic()
            response = client.get("/readyz")
            took = time.monotonic() - started
    hanging.dispose()
    assert response.status_code == 503
    assert "did not answer within 1 s" in response.json()["error"]["message"]
    assert 0.9 < took < 2.5
