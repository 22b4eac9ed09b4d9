"""Fixtures of the auth tests: apps with chosen settings, and a real Redis.

Redis is reached at TALLY_TEST_REDIS_URL (default redis://127.0.0.1:6379/0).
Without a server the Redis tests are skipped, with the command to start one,
unless CI=true or TALLY_TEST_REQUIRE_REDIS=1, where they fail (as PostgreSQL's
do in tests/conftest.py). Every test gets a key prefix of its own, and its
keys are deleted afterwards, so tests never see each other's counters.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tally.app import create_app
from tally.db.engine import Database
from tally.settings import Settings

REDIS_URL = os.environ.get("TALLY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_REDIS = "redis-server --daemonize yes"


def _redis_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("TALLY_TEST_REQUIRE_REDIS") == "1"


@pytest.fixture
def redis_settings() -> Iterator[dict[str, str]]:
    """TALLY_REDIS_URL and a fresh TALLY_REDIS_KEY_PREFIX; the prefix's keys go afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = f"Redis not reachable at {REDIS_URL} ({exc}); start it with: {START_REDIS}"
        if _redis_required():
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"tally-test-{uuid.uuid4().hex}"
    try:
        yield {"redis_url": REDIS_URL, "redis_key_prefix": prefix}
    finally:
        for name in client.scan_iter(match=f"{prefix}*"):
            client.delete(name)
        client.close()


Clients = Callable[..., TestClient]


@pytest.fixture
def clients(db: Database) -> Iterator[Clients]:
    """Apps over `db` with chosen settings (each its own process, as far as limits go)."""
    with ExitStack() as stack:

        def make(client_address: str = "testclient", **settings: Any) -> TestClient:
            app = create_app(Settings(database_url=db.url, **settings), database=db)
            test_client = TestClient(
                app, raise_server_exceptions=False, client=(client_address, 50000)
            )
            return stack.enter_context(test_client)

        yield make
