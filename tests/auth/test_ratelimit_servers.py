"""Two real `tally serve` processes sharing one Redis hold one limit together (SPEC 10)."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from tally.auth import keys
from tally.db.engine import Database
from tests.factories import make_key
from tests.servers import serving


@pytest.fixture
def servers(
    db: Database, redis_settings: dict[str, str], tmp_path: Path
) -> Iterator[list[tuple[str, Path]]]:
    """Two servers on the same database and Redis (with this test's key prefix)."""
    env = {
        "TALLY_REDIS_URL": redis_settings["redis_url"],
        "TALLY_REDIS_KEY_PREFIX": redis_settings["redis_key_prefix"],
        "TALLY_AUTH_FAILURES_PER_MINUTE": "4",
        # Already set: `tally serve` then starts without re-executing itself.
        "MALLOC_ARENA_MAX": "2",
    }
    with serving(tmp_path) as start:
        started = [start(db.url, env=env, wait=False) for _ in range(2)]
        for server in started:
            server.wait_healthy()
        yield [(server.base_url, server.log) for server in started]


def _concurrent_statuses(
    servers: list[tuple[str, Path]], db: Database, limit: int, requests: int
) -> dict[int, int]:
    """How many of `requests` concurrent requests of a new key, on both servers, got each status."""
    key = make_key(db, kind="platform", scopes=["read:billing"], rateLimitPerMinute=limit)
    auth = {"Authorization": f"Bearer {key}"}

    def one(n: int) -> int:
        with httpx2.Client(base_url=servers[n % 2][0], trust_env=False, timeout=30) as client:
            return client.get("/billing/usage", headers=auth).status_code

    with ThreadPoolExecutor(max_workers=limit) as pool:
        statuses = list(pool.map(one, range(requests)))
    return {status: statuses.count(status) for status in set(statuses)}


def test_two_servers_hold_one_limit_together(servers: list[tuple[str, Path]], db: Database) -> None:
    key = make_key(db, kind="platform", scopes=["read:billing"], rateLimitPerMinute=10)
    clients = [httpx2.Client(base_url=url, trust_env=False, timeout=10) for url, _ in servers]
    auth = {"Authorization": f"Bearer {key}"}
    try:
        answers = [clients[n % 2].get("/billing/usage", headers=auth) for n in range(11)]
        statuses = [answer.status_code for answer in answers]
        assert statuses == [200] * 10 + [429], [answer.text for answer in answers]
        remaining = [int(answer.headers["X-RateLimit-Remaining-Minute"]) for answer in answers]
        assert remaining == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
        assert 1 <= int(answers[10].headers["Retry-After"]) <= 60
        assert answers[10].json()["error"]["code"] == "RATE_LIMITED"
        # Refused on the other server too: the window is shared, not per process.
        assert clients[1].get("/billing/usage", headers=auth).status_code == 429

        # Concurrent requests on both servers: exactly the limit gets through.
        assert _concurrent_statuses(servers, db, limit=12, requests=36) == {200: 12, 429: 24}

        # Failed authentications of one address are counted together as well
        # (last: from here on this address is refused for a minute).
        guess = {"Authorization": f"Bearer {keys.generate_key()}"}
        failures = [clients[n % 2].get("/billing/usage", headers=guess) for n in range(5)]
        assert [answer.status_code for answer in failures] == [401, 401, 401, 401, 429]
        assert clients[0].get("/billing/usage", headers=auth).status_code == 429
    finally:
        for client in clients:
            client.close()
    for _, log in servers:
        text = log.read_text()
        assert key not in text
        assert "Traceback" not in text
