"""bench.peers at a tiny size: DuckDB's and chDB's answers equal tally's.

The real command runs as a subprocess (chDB holds one engine per process) on
a history of a few thousand events, on each backend; it aborts with status 3
when any answer of a peer differs from tally's, so a green run means every
window of Q1-Q4 and both series agreed. No timing is asserted.
"""

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

pytest.importorskip("duckdb", reason="duckdb is not installed: pip install -e '.[bench]'")
pytest.importorskip("chdb", reason="chdb is not installed: pip install -e '.[bench]'")

# Imported once the engines are known to be installed.
from bench import peers

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "TALLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SIZE = 3000
TIMEOUT = 300


def _run(tmp_path: Path, backend: str, tag: str) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "data"
    command = [sys.executable, "-m", "bench.peers", "--size", str(SIZE), "--windows", "4"]
    command += ["--backends", backend, "--data-dir", str(data), "--work-dir", str(data)]
    command += ["--out", str(tmp_path / "performance.md"), "--tag", tag]
    command += ["--results-dir", str(tmp_path / "results"), "--pg-admin-url", PG_ADMIN_URL]
    return subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _drop(name: str) -> None:
    conninfo = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        # The session's database is not used: it applies the skip-or-fail policy.
        request.getfixturevalue("postgresql_url")
    return str(request.param)


def test_peers_agree_with_tally_and_write_their_section(tmp_path: Path, backend: str) -> None:
    tag = f"peerstest{uuid.uuid4().hex[:8]}"
    try:
        done = _run(tmp_path, backend, tag)
    finally:
        if backend == "postgresql":
            _drop(f"tally_bench_{SIZE}_7_{tag}")
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "performance.md").read_text()
    assert report.count("## tally beside DuckDB and chDB") == 1
    assert f"### {SIZE:,} events" in report
    label = "tally SQLite" if backend == "sqlite" else "tally PostgreSQL"
    for measure in ("Q1", "Q2", "Q3", "Q4", "S1 ", "S1z"):
        for engine in (label, "DuckDB", "chDB"):
            assert (
                sum(
                    line.startswith(f"| {measure}") and f"| {engine} |" in line
                    for line in report.splitlines()
                )
                == 1
            ), (measure, engine)
    # Rerunning replaces this size's block and keeps the others.
    [saved] = (tmp_path / "results").glob("peers-*.json")
    run = json.loads(saved.read_text())
    peers.write_section(tmp_path / "performance.md", run)
    peers.write_section(tmp_path / "performance.md", run | {"size": 5000})
    report = (tmp_path / "performance.md").read_text()
    assert report.count("## tally beside DuckDB and chDB") == 1
    assert report.count(f"### {SIZE:,} events") == 1
    assert report.count("### 5,000 events") == 1


def test_a_differing_peer_answer_stops_the_run() -> None:
    company = str(uuid.uuid4())
    cells = [(0, company)]
    tally = {(0, company): (2, {"interview_minutes": (3, Decimal("1.5"))})}
    rows = [
        (company, 0, "interview_minutes", 3, 1_500_000, 9_000_000, 0),
        (company, 0, "", 0, 0, 0, 2),
    ]
    billing = {company: "minutes"}
    peers.check("peer", "Q", tally, peers.peer_view(rows, billing, cells))
    off_by_one = [rows[0], (company, 0, "", 0, 0, 0, 1)]
    with pytest.raises(peers.Mismatch, match="differs from tally"):
        peers.check("peer", "Q", tally, peers.peer_view(off_by_one, billing, cells))
    in_credits = {company: "credits"}
    with pytest.raises(peers.Mismatch, match="differs from tally"):
        peers.check("peer", "Q", tally, peers.peer_view(rows, in_credits, cells))
    stranger = [*rows, (str(uuid.uuid4()), 0, "", 0, 0, 0, 1)]
    with pytest.raises(peers.Mismatch, match="cells tally does not have"):
        peers.peer_view(stranger, billing, cells)
