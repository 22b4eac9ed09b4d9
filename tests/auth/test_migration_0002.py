"""Migration 0002 (digest index, hourly limit) keeps the keys of a database working."""

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, inspect

from tally.app import create_app
from tally.auth import keys
from tally.auth.models import ApiKey
from tally.core.instants import utcnow
from tally.db.engine import Database, normalise_url
from tally.db.migrate import alembic_config, upgrade
from tally.settings import Settings
from tests.servers import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database nobody has migrated yet."""
    with fresh_database(request, "mig") as url:
        yield url


def _insert_key(url: str, raw: str) -> None:
    """A key row as revision 0001 knew it (no hourly limit)."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(ApiKey.__table__).values(
                    id=uuid.uuid4(),
                    name="old",
                    kind="platform",
                    lookup_id=keys.lookup_id(raw),
                    key_hash=keys.hash_key(raw),
                    scopes=["read:billing"],
                    rate_limit_per_minute=2,
                    created_at=utcnow(),
                )
            )
    finally:
        engine.dispose()


def _indexes(url: str) -> set[str]:
    engine = create_engine(normalise_url(url))
    try:
        return {str(index["name"]) for index in inspect(engine).get_indexes("api_keys")}
    finally:
        engine.dispose()


def test_keys_made_before_0002_still_work_after_it(fresh_url: str) -> None:
    upgrade(fresh_url, "0001")
    raw = keys.generate_key()
    _insert_key(fresh_url, raw)
    upgrade(fresh_url)
    assert "ix_api_keys_key_hash" in _indexes(fresh_url)
    assert "ix_api_keys_lookup_id" not in _indexes(fresh_url)
    database = Database(fresh_url)
    try:
        app = create_app(Settings(database_url=fresh_url), database=database)
        with TestClient(app, raise_server_exceptions=False) as client:
            headers = {"Authorization": f"Bearer {raw}"}
            answers = [client.get("/billing/usage", headers=headers) for _ in range(3)]
    finally:
        database.dispose()
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit-Minute"] == "2"


def test_0002_downgrades_and_upgrades_again(fresh_url: str) -> None:
    upgrade(fresh_url)
    command.downgrade(alembic_config(fresh_url), "0001")
    assert "ix_api_keys_lookup_id" in _indexes(fresh_url)
    upgrade(fresh_url)
    assert "ix_api_keys_key_hash" in _indexes(fresh_url)
