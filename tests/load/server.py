"""A real `tally serve` in a subprocess, on a free port, for load and crash tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

TALLY = Path(sys.executable).parent / "tally"
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(url: str, **settings: str) -> dict[str, str]:
    extra = {f"TALLY_{name.upper()}": value for name, value in settings.items()}
    # MALLOC_ARENA_MAX set: `tally serve` does not re-exec itself, its pid stays ours.
    return (
        os.environ
        | {
            "TALLY_DATABASE_URL": url,
            "TALLY_LOG_LEVEL": "warning",
            "MALLOC_ARENA_MAX": "2",
        }
        | extra
    )


@dataclass
class Server:
    """One running `tally serve` (its own process group, so kill -9 reaches every worker)."""

    process: "subprocess.Popen[bytes]"
    base_url: str
    log: Path

    def kill(self) -> None:
        """kill -9: no shutdown, no cleanup, as a crash or an OOM kill would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start(url: str, tmp: Path, *flags: str, **settings: str) -> Server:
    """Start `tally serve` and wait until /healthz answers."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(TALLY), "serve", "--host", "127.0.0.1", "--port", str(port), *flags],
            env=environment(url, **settings),
            cwd=tmp,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx2.Client(base_url=server.base_url, trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"tally serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get("/healthz").status_code == 200:
                    return server
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
    server.stop()
    pytest.fail(f"tally serve did not answer /healthz in {STARTUP_TIMEOUT} s:\n{log.read_text()}")


def verify(url: str) -> "subprocess.CompletedProcess[str]":
    """`tally verify` against the database: exit 0 when every aggregate matches."""
    return subprocess.run(  # noqa: S603 - our own console script
        [str(TALLY), "verify"],
        env=environment(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
