"""`tally events import` of an NDJSON file, as a real subprocess of the CLI.

Timed from spawn to exit (interpreter start and the migration check
included; the run on an empty file says how much that is), with the peak
resident memory of the subprocess sampled by psutil.
"""

import argparse
import importlib.util
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench import backends
from bench.backends import Place
from bench.dataset import EventStream, build_world
from bench.ingest import LIMIT_TABLE
from bench.load import _create_world
from bench.measure import say
from bench.server import MemorySampler, tally_command
from tally.core.instants import to_micros, utcnow
from tally.db.engine import Database
from tally.db.migrate import upgrade
from tally.usage import ingest
from tally.usage.importer import DEFAULT_CHUNK as CHUNK
from tally.usage.importer import import_events
from tally.usage.ingest import Event
from tally.usage.repository import EVENT_COLUMNS
from tally.usage.schemas import EventIn

TIMEOUT = 4 * 3600.0
SUMMARY = re.compile(r"accepted (\d+), duplicates (\d+), rejected (\d+)")


def missing_reason() -> str | None:
    """Why the import cannot run here, or None when `tally events import` exists."""
    if importlib.util.find_spec("tally.usage.importer") is None:
        return "tally.usage.importer does not exist yet"
    from tally.usage import importer

    if not hasattr(importer, "import_events"):
        return "tally.usage.importer has no import_events"
    from typer.main import get_command

    from tally.cli import app

    events = getattr(get_command(app), "commands", {}).get("events")
    if events is None or "import" not in getattr(events, "commands", {}):
        return "the CLI has no `tally events import` command"
    return None


def write_ndjson(events: list[dict[str, Any]], path: Path) -> None:
    with path.open("w") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")


def _run(url: str, path: Path) -> tuple[float, float, str, int]:
    """Seconds, peak MB, the summary line printed, exit code."""
    command = [*tally_command(), "events", "import", str(path), "--database-url", url]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    memory = MemorySampler(process.pid, interval=0.05).start()
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=30)
    finally:
        peak = memory.stop()
    elapsed = time.perf_counter() - began
    text = (out + err).decode(errors="replace")
    found = SUMMARY.search(text)
    return elapsed, peak, found.group(0) if found else text[-500:], process.returncode


def run_import(url: str, events: list[dict[str, Any]], probe_startup: bool) -> dict[str, Any]:
    """Import the events from a file; events/s and the subprocess's peak memory."""
    with tempfile.TemporaryDirectory(prefix="tally-bench-import-") as folder:
        startup = None
        if probe_startup:
            empty = Path(folder) / "empty.ndjson"
            empty.touch()
            startup = _run(url, empty)[0]
        path = Path(folder) / "events.ndjson"
        write_ndjson(events, path)
        size_mb = path.stat().st_size / 1e6
        seconds, peak, summary, code = _run(url, path)
    found = SUMMARY.search(summary)
    accepted = int(found.group(1)) if found else 0
    return {
        "events": len(events),
        "file_mb": size_mb,
        "accepted": accepted,
        "summary": summary.strip(),
        "exit_code": code,
        "seconds": seconds,
        "startup_seconds": startup,
        "events_per_s": accepted / seconds if seconds else 0.0,
        "peak_rss_mb": peak,
    }


# --- The bulk import against the per-batch path it replaced -------------------------------------
#
#   .venv/bin/python -m bench.importing --events 1000000 --backends sqlite postgresql
#
# For each backend and each order of the same events (time order as bench.dataset
# streams them, and a random shuffle over the thirteen months), on a fresh
# database holding only the dataset's companies and prices:
#   - new: `tally events import FILE` (the bulk path), timed from spawn to exit;
#   - old: the per-batch path the command used before (tally.usage.ingest.ingest
#     per 1,000 events, one transaction each), in a subprocess of its own;
#   - limit: a bare executemany (SQLite) or COPY (PostgreSQL) of the same rows
#     into an index-free table, the storage engine's own ceiling;
# then `tally verify` over the imported database (exit 0: every aggregate matches).

OLD_BATCH = 1000
SEED = 7
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TAG = [""]  # a suffix of the database names, so that two runs can share a server


def write_files(folder: Path, total: int, seed: int) -> tuple[Path, Path]:
    """The dataset's events in time order and shuffled, as NDJSON."""
    world = build_world(seed, ANCHOR)
    ordered = folder / "time.ndjson"
    lines = [json.dumps(event) + "\n" for event in EventStream(seed, world, total, ANCHOR)]
    ordered.write_text("".join(lines))
    random.Random(seed).shuffle(lines)
    shuffled = folder / "random.ndjson"
    shuffled.write_text("".join(lines))
    return ordered, shuffled


def fresh_place(backend: str, folder: Path, label: str) -> Place:
    """A migrated database with only the dataset's partners, companies and prices."""
    label = f"{label}{TAG[0]}"
    if backend == "sqlite":
        place = Place("sqlite", f"sqlite:///{folder / label}.db", str(folder / f"{label}.db"))
    else:
        name = f"tally_bench_import_{label}"
        url = make_url(PG_ADMIN).set(database=name).render_as_string(False)
        place = Place("postgresql", url, name, PG_ADMIN)
    backends.create(place)
    upgrade(place.url)
    database = Database(place.url)
    try:
        _create_world(database, build_world(SEED, ANCHOR))
    finally:
        database.dispose()
    return place


def old_path(url: str, path: Path) -> int:
    """What `tally events import` did before the bulk path (clean files only)."""
    database = Database(url)
    accepted = 0
    try:
        with path.open() as handle:
            while batch := [json.loads(line) for line in islice(handle, OLD_BATCH)]:
                with database.transaction(write=True) as session:
                    accepted += ingest.ingest(session, {"events": batch}, utcnow()).accepted
    finally:
        database.dispose()
    return accepted


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str]) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS (MB), output, and the CPU seconds the process used.

    On a shared machine the CPU seconds are the steadier measure: the wall
    time also counts every moment the process waited for a core.
    """
    cpu = _children_cpu()
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    memory = MemorySampler(process.pid, interval=0.2).start()
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        peak = memory.stop()
    text = (out + err).decode(errors="replace").strip()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited {process.returncode}: {text[-2000:]}")
    return time.perf_counter() - began, peak, text, _children_cpu() - cpu


def storage_limit(place: Place, path: Path) -> float:
    """Rows/s of a bare bulk write of the file's rows into an index-free table."""
    rows = []
    received = to_micros(utcnow())
    sqlite = place.backend == "sqlite"
    with path.open() as handle:
        for line in handle:
            event = Event.from_input(EventIn.model_validate(json.loads(line)))
            company: Any = event.company_id.hex if sqlite else event.company_id
            flag: Any = int(event.is_test) if sqlite else event.is_test
            head = (event.id, company, event.cost_key, event.occurred_at, event.minutes)
            rows.append(
                (*head, event.interview_id, flag, event.agent_focus, 0, None, received, None)
            )
    database = Database(place.url)
    try:
        with database.transaction(write=True) as session:
            session.execute(
                text(f"CREATE TABLE {LIMIT_TABLE} AS SELECT * FROM usage_events WHERE 1 = 0")
            )
        began = time.perf_counter()
        for offset in range(0, len(rows), CHUNK):
            part = rows[offset : offset + CHUNK]
            with database.transaction(write=True) as session:
                cursor: Any = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                if sqlite:
                    marks = ", ".join("?" * len(EVENT_COLUMNS))
                    cursor.executemany(f"INSERT INTO {LIMIT_TABLE} VALUES ({marks})", part)
                else:
                    with cursor.copy(f"COPY {LIMIT_TABLE} FROM STDIN") as copy:
                        for row in part:
                            copy.write_row(row)
        elapsed = time.perf_counter() - began
    finally:
        database.dispose()
    return len(rows) / elapsed


def compare(
    backend: str, files: dict[str, Path], folder: Path, skip_old: bool
) -> list[dict[str, Any]]:
    """New path, old path and the storage limit for each file, on fresh databases."""
    results = []
    for order, path in files.items():
        events = sum(1 for _ in path.open())
        result: dict[str, Any] = {"backend": backend, "order": order, "events": events}
        place = fresh_place(backend, folder, f"new_{order}")
        seconds, peak, summary, cpu = _timed(
            [*tally_command(), "events", "import", str(path), "--database-url", place.url]
        )
        verified = _timed([*tally_command(), "verify", "--database-url", place.url])[2]
        found = SUMMARY.search(summary)
        result |= {
            "new_s": seconds,
            "new_cpu_s": cpu,
            "new_rss_mb": peak,
            "new_summary": found.group(0) if found else summary[-300:],
            "verify": verified,
        }
        result["limit_rows_per_s"] = storage_limit(place, path)
        backends.drop(place)
        if not skip_old:
            place = fresh_place(backend, folder, f"old_{order}")
            seconds, peak, _, cpu = _timed(
                [sys.executable, "-m", "bench.importing", "--old", place.url, str(path)]
            )
            result |= {"old_s": seconds, "old_cpu_s": cpu, "old_rss_mb": peak}
            backends.drop(place)
        say(f"   {json.dumps(result)}")
        results.append(result)
    return results


HEADER = (
    "backend",
    "order",
    "events",
    "old path, events/s",
    "new path, events/s",
    "new / old",
    "old path, events per CPU s",
    "new path, events per CPU s",
    "new / old (CPU)",
    "bare insert, rows/s",
    "new path peak RSS, MB",
    "tally verify",
)


def _row(r: dict[str, Any]) -> list[str]:
    new = r["events"] / r["new_s"]
    old = r["events"] / r["old_s"] if "old_s" in r else None
    new_cpu = r["events"] / r["new_cpu_s"]
    old_cpu = r["events"] / r["old_cpu_s"] if "old_cpu_s" in r else None
    clean = "every aggregate matches" in r["verify"]
    return [
        r["backend"],
        r["order"],
        f"{r['events']:,}",
        f"{old:,.0f}" if old else "not run",
        f"{new:,.0f}",
        f"{new / old:.1f} x" if old else "-",
        f"{old_cpu:,.0f}" if old_cpu else "not run",
        f"{new_cpu:,.0f}",
        f"{new_cpu / old_cpu:.1f} x" if old_cpu else "-",
        f"{r['limit_rows_per_s']:,.0f}",
        f"{r['new_rss_mb']:,.0f}",
        "clean" if clean else r["verify"][:60],
    ]


def report(results: list[dict[str, Any]]) -> list[str]:
    """A markdown table: events/s of both paths side by side, and the limit."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    return lines


STAGES = (
    ("reading and JSON", "tally.usage.importer", "_parse_ndjson"),
    ("shape checks (fast path)", "tally.usage.shapes", "ShapeChecker.fast"),
    ("shape checks (wire schema)", "tally.usage.ingest", "shape_of"),
    ("company, instant, interview checks", "tally.usage.bulk", "ChunkWriter._in_context"),
    ("pricing and staged rows", "tally.usage.bulk", "_price"),
    ("staging + join with stored ids", "tally.usage.bulk", "_Stage.stored"),
    ("INSERT ... SELECT ... RETURNING", "tally.usage.bulk", "_Stage.insert"),
    ("interviews and BucketDeltas (apply included)", "tally.usage.ingest", "count"),
    ("apply_bucket_deltas", "tally.usage.repository", "apply_bucket_deltas"),
    ("webhook crossings", "tally.webhooks.outbox", "record_crossings"),
    ("folding the chunk into the running totals", "tally.usage.fold", "fold_all"),
)


def breakdown(backend: str, path: Path, folder: Path) -> dict[str, float]:
    """CPU seconds of each stage of the bulk path, in-process (timers around each)."""
    spent: dict[str, float] = {}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - began

        return wrapper

    for name, module_name, attribute in STAGES:
        owner: Any = importlib.import_module(module_name)
        *parents, leaf = attribute.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, leaf, timed(name, getattr(owner, leaf)))
    # apply_bucket_deltas is looked up through the repository module at call time.
    place = fresh_place(backend, folder, "breakdown")
    database = Database(place.url)
    began = time.process_time()
    try:
        import_events(database, path)
    finally:
        database.dispose()
    spent["total"] = time.process_time() - began
    backends.drop(place)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--orders", nargs="+", default=["time", "random"])
    parser.add_argument("--skip-old", action="store_true", help="measure only the new path")
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    parser.add_argument(
        "--breakdown", action="store_true", help="only CPU seconds per stage of the new path"
    )
    parser.add_argument("--tag", default="", help="suffix of the databases' names")
    parser.add_argument("--old", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.old:
        print(f"accepted {old_path(args.old[0], Path(args.old[1]))}")
        return
    TAG[0] = f"_{args.tag}" if args.tag else ""
    results = []
    with tempfile.TemporaryDirectory(prefix="tally-bench-bulk-") as name:
        folder = Path(name)
        ordered, shuffled = write_files(folder, args.events, SEED)
        files = {"time": ordered, "random": shuffled}
        files = {order: files[order] for order in args.orders}
        if args.breakdown:
            for backend in args.backends:
                for order, path in files.items():
                    spent = breakdown(backend, path, folder)
                    print(backend, order, {k: round(v, 2) for k, v in spent.items()})
            return
        for backend in args.backends:
            results += compare(backend, files, folder, args.skip_old)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print("\n".join(report(results)))


if __name__ == "__main__":
    main()
