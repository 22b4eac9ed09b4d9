"""Every row of issue 9's targets, measured in one run: one benchmark after another.

    .venv/bin/python -m bench.issue9 [--results-dir bench/results] [--only NAME ...]

Runs the benchmarks below in this order, each as a subprocess of its own,
on the same machine and the same code, and keeps each one's command, start,
end, exit status and whole output under `<results-dir>/issue9-<UTC time>/`
(`run.json` and one `<name>.log` each). The benchmarks that write their own
section of docs/performance.md (bench.sizes, bench.peers) do so as when run
alone; the table "Ingestion near the storage limit, and the peers: where each
target stands" is written from these logs. A benchmark that fails is
recorded and the run goes on with the next.

The cached histories they use are built on first use (bench/README.md); at
10 M events that takes about an hour, so build them first when timing the
run matters (`python -m bench.pgcopy --size 10000000 --tag series` copies the
SQLite one into PostgreSQL).
"""

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.config import BENCH_DIR, REPO

PY = sys.executable
# (name, arguments after `python -m`), in the order they run.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # HTTP ingestion, time and random order, SQLite and PostgreSQL, one server.
    (
        "writepath",
        (
            "bench.writepath",
            "--backends",
            "sqlite",
            "postgresql",
            "--size",
            "20000",
            "--events",
            "100000",
            "--windows",
            "5",
        ),
    ),
    # `tally events import` of 1 M events, time and random order.
    (
        "import",
        ("bench.importing", "--events", "1000000", "--backends", "sqlite", "--skip-old"),
    ),
    # Q1-Q4 at 1 M and 10 M (SQLite), PostgreSQL's naive GROUP BY at 10 M.
    (
        "sizes",
        (
            "bench.sizes",
            "--small",
            "1000000",
            "--large",
            "10000000",
            "--windows",
            "100",
            "--naive-windows",
            "5",
        ),
    ),
    # Q1 requests/s against /healthz's, same server.
    (
        "rps",
        (
            "bench.rps",
            "--size",
            "100000",
            "--backends",
            "sqlite",
            "postgresql",
            "--queries",
            "Q1",
            "--seconds",
            "4",
            "--rounds",
            "3",
        ),
    ),
    # tally beside DuckDB and chDB on the same 10 M events.
    ("peers", ("bench.peers", "--size", "10000000", "--backends", "sqlite", "--windows", "20")),
    # 1, 2 and 4 server processes on one PostgreSQL.
    ("scaleout", ("bench.scaleout", "--size", "20000", "--events", "48000", "--seed", "7")),
)
NAMES = tuple(name for name, _ in STEPS)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(folder: Path, names: tuple[str, ...]) -> list[dict[str, object]]:
    folder.mkdir(parents=True, exist_ok=True)
    done: list[dict[str, object]] = []
    for name, arguments in STEPS:
        if name not in names:
            continue
        command = [PY, "-m", *arguments]
        shown = " ".join([".venv/bin/python", "-m", *arguments])
        began, started = time.perf_counter(), _now()
        print(f"{started} {name}: {shown}", flush=True)
        with (folder / f"{name}.log").open("w") as log:
            log.write(f"$ {shown}\n")
            log.flush()
            status = subprocess.run(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False
            ).returncode
        step = {
            "name": name,
            "command": shown,
            "started": started,
            "finished": _now(),
            "seconds": round(time.perf_counter() - began),
            "status": status,
        }
        print(f"{step['finished']} {name}: exit {status} after {step['seconds']} s", flush=True)
        done.append(step)
        (folder / "run.json").write_text(json.dumps(done, indent=2) + "\n")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.issue9", description=__doc__)
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    steps = run(args.results_dir / f"issue9-{stamp}", tuple(args.only))
    return 0 if all(step["status"] == 0 for step in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
