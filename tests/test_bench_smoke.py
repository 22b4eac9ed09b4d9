"""The benchmark's smallest configuration finishes and produces its tables.

No timing is asserted: this only keeps `python -m bench.run` working. It runs
the real command as a subprocess (a server included) on a tiny SQLite
history, with the Python load loop instead of wrk, writing into a temporary
directory; PostgreSQL is added when a server answers.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "TALLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TIMEOUT = 150
TARGET_ROWS = (
    "| Q1 p99 at 10 M events, in-process",
    "| Q2 p99 at 10 M events, in-process",
    "| Q3 p99 at 10 M events, in-process",
    "| Q4 p99 at 10 M events, in-process",
    "| Q1-Q4 p50 at 10 M / p50 at 1 M",
    "| naive / tally for Q2 at 10 M",
    "| HTTP ingestion, batches of 1,000, durable",
    "| `tally events import`",
    "| Q1 requests/s ÷ /healthz requests/s",
    "| PostgreSQL | the same table",
    "| server resident memory during the benchmark",
)


def _postgres_reachable() -> bool:
    conninfo = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
    try:
        psycopg.connect(conninfo, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def _run(tmp_path: Path, backends: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "performance.md"
    command = [sys.executable, "-m", "bench.run", "--smoke", "--discard"]
    command += ["--sizes", "2000", "--windows", "5", "--clients", "1", "2", "--workers", "1"]
    command += ["--backends", *backends, "--out", str(out)]
    command += ["--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "results")]
    command += ["--pg-admin-url", PG_ADMIN_URL, "--tag", f"smoke{os.getpid()}"]
    done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    return done, out


def test_smallest_configuration_produces_the_tables(tmp_path: Path) -> None:
    backends = ["sqlite"] + (["postgresql"] if _postgres_reachable() else [])
    done, out = _run(tmp_path, backends)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    for backend in backends:
        assert f"## {backend}" in report
    lines = report.splitlines()
    for row in TARGET_ROWS:
        assert sum(line.startswith(row) for line in lines) == len(backends), row
    assert "| 2,000 | Q4: ATS key over 500 companies, 365 days |" in report
    assert "## Where a target is missed" in report
    assert "<!-- analysis:start -->" in report
    assert (tmp_path / "performance-latency.png").stat().st_size > 0
    assert list((tmp_path / "results").glob("*.json"))
    assert "naive agrees" in report
    assert "| no (" not in report, "tally and the naive query disagree"
