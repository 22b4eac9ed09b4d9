"""Fuzzing the API from its own OpenAPI document finds no answer that contradicts it.

A real `tally serve --demo` (temporary SQLite database, free port) is fuzzed
by schemathesis through its command line with a platform key holding every
scope (platform keys are not rate limited): every check except
positive_data_acceptance (the schema cannot say that a companyId must name an
existing company, so valid-looking data is sometimes refused, rightly), in
every phase (examples, coverage, fuzzing, stateful). Bounded: a few examples
per operation, a fixed seed (TALLY_SCHEMATHESIS_SEED overrides it) and a hard
timeout.

DELETE /admin/api-keys/{key_id} runs on its own afterwards: in the stateful
phase schemathesis lists the keys and revokes them, its own key included,
after which every operation would only answer 401.
"""

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

BIN = Path(sys.executable).parent
KEY_LINE = re.compile(r"platform key:\s+(sk_live_[0-9A-Za-z]{43})")
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 300
EXAMPLES = os.environ.get("TALLY_SCHEMATHESIS_EXAMPLES", "25")
CONFIG = Path(__file__).parent / "schemathesis.toml"
SEED = os.environ.get("TALLY_SCHEMATHESIS_SEED", "20261130")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _platform_key(process: subprocess.Popen[bytes], base_url: str, log: Path) -> str:
    """The key `--demo` printed, once the server answers /healthz."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"tally serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get("/healthz").status_code == 200:
                    match = KEY_LINE.search(log.read_text())
                    assert match is not None, log.read_text()
                    return match.group(1)
            except httpx2.TransportError:
                pass
            time.sleep(0.2)
    pytest.fail(f"tally serve --demo did not answer in {STARTUP_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    port = _free_port()
    log = tmp_path / "serve.log"
    env = os.environ | {
        "TALLY_DATABASE_URL": f"sqlite:///{tmp_path / 'tally.db'}",
        "TALLY_LOG_LEVEL": "warning",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(BIN / "tally"), "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        yield base_url, _platform_key(process, base_url, log), log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _schemathesis(base_url: str, key: str, cwd: Path, *selection: str) -> None:
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
        *selection,
    ]
    result = subprocess.run(  # noqa: S603 - the pinned schemathesis console script
        command, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    assert "failure" not in output.split("SUMMARY")[-1].lower(), output[-5_000:]


def test_schemathesis_finds_no_answer_contradicting_the_document(
    demo_server: tuple[str, str, Path], tmp_path: Path
) -> None:
    base_url, key, log = demo_server
    _schemathesis(base_url, key, tmp_path, "--exclude-method", "DELETE")
    _schemathesis(base_url, key, tmp_path, "--include-method", "DELETE")
    # The key survived the first run: it really was authenticated all along.
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=5) as client:
        answer = client.get("/admin/companies", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    text = log.read_text()
    assert "Traceback" not in text
    assert "internal error" not in text
