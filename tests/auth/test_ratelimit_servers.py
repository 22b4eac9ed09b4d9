"""Two real `tally serve` processes sharing one Redis hold one limit together (SPEC 10)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from tally.auth import keys
from tally.db.engine import Database
from tests.factories import make_key

TALLY = Path(sys.executable).parent / "tally"
STARTUP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"tally serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"tally serve did not answer /healthz in {STARTUP_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture
def servers(
    db: Database, redis_settings: dict[str, str], tmp_path: Path
) -> Iterator[list[tuple[str, Path]]]:
    """Two servers on the same database and Redis (with this test's key prefix)."""
    env = os.environ | {
        "TALLY_DATABASE_URL": db.url,
        "TALLY_REDIS_URL": redis_settings["redis_url"],
        "TALLY_REDIS_KEY_PREFIX": redis_settings["redis_key_prefix"],
        "TALLY_AUTH_FAILURES_PER_MINUTE": "4",
        "TALLY_LOG_LEVEL": "warning",
        # Already set: `tally serve` then starts without re-executing itself.
        "MALLOC_ARENA_MAX": "2",
    }
    processes: list[subprocess.Popen[bytes]] = []
    started: list[tuple[str, Path]] = []
    try:
        for _ in range(2):
            port = _free_port()
            log = tmp_path / f"serve-{port}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(  # noqa: S603 - our own console script
                    [str(TALLY), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=tmp_path,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            started.append((f"http://127.0.0.1:{port}", log))
        for (base_url, log), process in zip(started, processes, strict=True):
            _wait_healthy(base_url, process, log)
        yield started
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
