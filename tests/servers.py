"""One home for real `tally serve` processes and throw-away databases in the tests.

`start_serve` runs the console script on a free port with its output in a log
file and waits for /healthz; `stop` ends a process (SIGTERM, then SIGKILL);
`serving` starts any number and stops them all at the end;
`fresh_postgres_database` creates a database and drops it afterwards, and
`fresh_database` gives a test an empty SQLite file or PostgreSQL database,
whichever backend it is parametrised with (`BACKENDS`). PostgreSQL comes from
the `postgresql_url` fixture, so its skip-or-fail policy (tests/conftest.py)
holds here too.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

TALLY = Path(sys.executable).parent / "tally"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 30.0
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _signal(process: "subprocess.Popen[bytes]", signum: int, group: bool) -> None:
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)


def kill(process: "subprocess.Popen[bytes]", *, group: bool = False) -> None:
    """SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill would."""
    if process.poll() is None:
        _signal(process, signal.SIGKILL, group)
    process.wait(timeout=KILL_TIMEOUT)


def stop(
    process: "subprocess.Popen[bytes]", timeout: float = STOP_TIMEOUT, *, group: bool = False
) -> None:
    """SIGTERM (to the process group with `group`), then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        _signal(process, signal.SIGTERM, group)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(process, group=group)


def wait_healthy(
    base_url: str,
    process: "subprocess.Popen[bytes]",
    log: Path,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Return once GET /healthz answers 200; fail the test, with the log, if the
    process exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"tally serve exited with {process.returncode}:\n{_read(log)}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"tally serve did not answer /healthz in {timeout} s:\n{_read(log)}")


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


@dataclass
class Server:
    """One running `tally serve`; `group`: in its own process group (signals reach every worker)."""

    process: "subprocess.Popen[bytes]"
    base_url: str
    log: Path
    group: bool = False
    stop_timeout: float = STOP_TIMEOUT

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_text(self) -> str:
        return _read(self.log)

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        wait_healthy(self.base_url, self.process, self.log, timeout)

    def stop(self) -> None:
        stop(self.process, self.stop_timeout, group=self.group)

    def kill(self) -> None:
        kill(self.process, group=self.group)


def start_serve(
    url: str,
    tmp: Path,
    *flags: str,
    env: Mapping[str, str | None] | None = None,
    port: int | None = None,
    log: Path | None = None,
    group: bool = False,
    startup_timeout: float = STARTUP_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
    wait: bool = True,
    preexec_fn: Callable[[], None] | None = None,
) -> Server:
    """`tally serve --host 127.0.0.1 --port <free> *flags` on the database at `url`.

    Runs in `tmp` with TALLY_LOG_LEVEL=warning (`env` adds or overrides
    variables; None removes one), its output appended to `log` (default tmp/serve-<port>.log).
    With `wait`, returns once /healthz answers, stopping the server if it
    never does; without, call `Server.wait_healthy` (to start several at once).
    """
    port = free_port() if port is None else port
    log = tmp / f"serve-{port}.log" if log is None else log
    environment = os.environ | {"TALLY_DATABASE_URL": url, "TALLY_LOG_LEVEL": "warning"}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(TALLY), "serve", "--host", "127.0.0.1", "--port", str(port), *flags],
            env=environment,
            cwd=tmp,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=group,
            preexec_fn=preexec_fn,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, group, stop_timeout)
    if wait:
        try:
            server.wait_healthy(startup_timeout)
        except BaseException:
            server.stop()
            raise
    return server


@contextmanager
def serving(tmp: Path) -> Iterator[Callable[..., Server]]:
    """`start_serve` with `tmp` given; every server it started is stopped on exit."""
    started: list[Server] = []

    def start(url: str, *flags: str, **options: Any) -> Server:
        server = start_serve(url, tmp, *flags, **options)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@contextmanager
def fresh_postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database named `prefix` + random hex on the server of `server_url`
    (its URL is yielded); dropped on exit, whoever is still connected."""
    server = make_url(server_url)
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def fresh_database(request: pytest.FixtureRequest, name: str) -> Iterator[str]:
    """The URL of a database nobody has touched, for a fixture parametrised with
    `BACKENDS`: the SQLite file tmp_path/<name>.db, or a PostgreSQL database
    tally_<name>_<hex> on the test session's server (dropped afterwards)."""
    if request.param == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        yield f"sqlite:///{tmp_path / f'{name}.db'}"
        return
    with fresh_postgres_database(
        request.getfixturevalue("postgresql_url"), f"tally_{name}_"
    ) as url:
        yield url
