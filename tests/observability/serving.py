"""A real `tally serve` subprocess for the transport tests, and a plain HTTP probe."""

import http.client
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TALLY = Path(sys.executable).parent / "tally"
STARTUP_TIMEOUT = 45.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


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
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    environment = os.environ | {
        "TALLY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "TALLY_LOG_LEVEL": "info",
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(TALLY), "serve", "--host", "127.0.0.1", "--port", str(port), *flags],
            env=environment | (env or {}),
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_files(max_open_files) if max_open_files else None,
        )
    server = Server(port, process, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"tally serve exited with {server.process.returncode}:\n{server.log_text()}"
            )
        try:
            if get(server.port, "/healthz", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"tally serve did not answer in {STARTUP_TIMEOUT} s:\n{server.log_text()}")
