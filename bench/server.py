"""The server under test: `tally serve` as a subprocess, its keys and its memory."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]

from bench.load import Meta
from bench.queries import Client
from tally.auth import admin as keys_admin
from tally.auth.schemas import KeyIn
from tally.core.instants import utcnow
from tally.db.engine import Database

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def tally_command() -> list[str]:
    """The installed `tally` script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("tally")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tally.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MemorySampler:
    """Peak resident memory of a process and all its descendants, summed."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.peak_single_bytes = 0  # the largest one process reached
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> list[int]:
        try:
            root = psutil.Process(self.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        sizes = []
        for process in family:
            try:
                sizes.append(process.memory_info().rss)
            except psutil.Error:
                continue
        return sizes

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = self._sample()
            self.peak_bytes = max(self.peak_bytes, sum(sizes))
            self.peak_single_bytes = max(self.peak_single_bytes, *sizes, 0)
            self._stop.wait(self.interval)

    def start(self) -> "MemorySampler":
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak_bytes / 1e6


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    memory: MemorySampler
    log: Path


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            client = Client(server.port, timeout=2)
            try:
                client.get_ok("/healthz")
                return
            finally:
                client.close()
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.2)
    tail = server.log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"tally serve did not become ready:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (uvicorn and its workers), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def running(url: str, workers: int) -> Iterator[Server]:
    """`tally serve` on a free port of 127.0.0.1, always stopped on the way out."""
    port = free_port()
    env = os.environ | {"TALLY_DATABASE_URL": url, "TALLY_LOG_LEVEL": "warning"}
    command = [*tally_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with tempfile.NamedTemporaryFile(prefix="tally-bench-serve-", suffix=".log") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        server = Server(port, process, MemorySampler(process.pid).start(), Path(log.name))
        try:
            _wait_ready(server)
            yield server
        finally:
            server.memory.stop()
            _stop(process)


def keepalive_probe(port: int, requests: int = 20) -> float:
    """Median ms of GET /healthz on one keep-alive connection (about 1 ms when healthy)."""
    client = Client(port)
    timings = []
    try:
        for _ in range(requests):
            began = time.perf_counter()
            client.get_ok("/healthz")
            timings.append(time.perf_counter() - began)
    finally:
        client.close()
    return sorted(timings)[len(timings) // 2] * 1000


@dataclass(frozen=True)
class Keys:
    company: str
    ats_q3: str
    ats_q4: str
    platform: str

    def for_query(self, name: str) -> str:
        return {"Q1": self.company, "Q2": self.company, "Q3": self.ats_q3}.get(name, self.ats_q4)


def create_keys(database: Database, meta: Meta) -> Keys:
    """Real keys, through the same service as POST /admin/api-keys."""
    # Measuring throughput, not the rate limits: the highest limits a key may have.
    unlimited: dict[str, Any] = {"rateLimitPerMinute": 1_000_000, "rateLimitPerHour": 60_000_000}
    bodies: list[dict[str, Any]] = [
        {"kind": "company", "companyId": meta.company, "scopes": ["read:billing"]} | unlimited,
        {"kind": "ats", "atsIntegrationId": meta.ats_q3, "scopes": ["read:billing"]} | unlimited,
        {"kind": "ats", "atsIntegrationId": meta.ats_q4, "scopes": ["read:billing"]} | unlimited,
        {"kind": "platform", "scopes": ["write:usage"]},
    ]
    with database.transaction(write=True) as session:
        raw = [
            keys_admin.create_key(session, KeyIn.model_validate(body | {"name": "bench"}), utcnow())
            for body in bodies
        ]
    return Keys(*(key for _, key in raw))
