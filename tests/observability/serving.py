"""A real `tally serve` subprocess for the transport tests, and a plain HTTP probe."""

import http.client
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import TALLY, Server, start_serve

__all__ = ["TALLY", "Answer", "Server", "get", "tally_serve"]

STARTUP_TIMEOUT = 45.0
STOP_TIMEOUT = 15.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def get(port: int, path: str, timeout: float = 5.0) -> Answer:
    """One GET on a new connection, timed from connect to the last byte."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, body, time.monotonic() - started)
    finally:
        connection.close()


def _limit_files(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@contextmanager
def tally_serve(
    tmp_path: Path,
    *flags: str,
    env: dict[str, str] | None = None,
    max_open_files: int | None = None,
) -> Iterator[Server]:
    """`tally serve` on a free port with a SQLite file; stopped (SIGTERM) on exit."""
    server = start_serve(
        f"sqlite:///{tmp_path / 'serve.db'}",
        tmp_path,
        *flags,
        env={"TALLY_LOG_LEVEL": "info", "PROMETHEUS_MULTIPROC_DIR": None} | (env or {}),
        startup_timeout=STARTUP_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
        preexec_fn=_limit_files(max_open_files) if max_open_files else None,
    )
    try:
        yield server
    finally:
        server.stop()
