"""Ingestion under concurrency: 1, 4 and 16 clients, 1 and 2 server processes.

    .venv/bin/python -m bench.concurrency --size 20000 --events 8000 --seed 7

For each backend (SQLite with one server process; PostgreSQL with one and
two) a fresh scratch copy of the cached benchmark database is served by a
real `tally serve`, and the same number of fresh events is POSTed in batches
of 1,000 by 1, 4 and 16 concurrent clients, one run after the other on the
same server, so the ratios compare like with like. Two traffic shapes:

- mixed: the dataset's stream as it comes (a batch holds ~600 of the 1,000
  companies, so any two batches share companies and their writes queue);
- grouped: the same events sorted by company before batching (a batch holds
  a few companies, as a fleet of per-partner workers would send them), so
  batches of different companies write in parallel on PostgreSQL.

Prints a Markdown table (docs/performance.md, "Ingestion under concurrency").
"""

import argparse
from typing import Any

from bench import backends, ingest, server
from bench.config import parse
from bench.load import obtain
from bench.measure import say
from tally.db.engine import Database

SHAPES = ("mixed", "grouped")


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency")
    parser.add_argument("--size", type=int, default=20_000, help="events in the history")
    parser.add_argument("--events", type=int, default=8_000, help="fresh events per run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def _bodies(events: list[dict[str, Any]], shape: str) -> list[bytes]:
    if shape == "grouped":
        events = sorted(events, key=lambda item: (item["companyId"], item["occurredAt"]))
    return ingest.encode_batches(events)


def _runs(backend: str, workers: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    config = parse(["--sizes", str(args.size), "--backends", backend, "--seed", str(args.seed)])
    place, meta, _ = obtain(config, args.size, backend)
    work = backends.scratch_copy(place)
    rows = []
    try:
        database = Database(work.url)
        try:
            key = server.create_keys(database, meta).platform
        finally:
            database.dispose()
        with server.running(work.url, workers) as running:
            for shape in args.shapes:
                for run_number, clients in enumerate(args.clients):
                    prefix = f"c{workers}-{shape}-{clients}-{run_number}-"
                    seed = args.seed + 3000 + clients
                    events = ingest.fresh_events(meta, seed, args.events, prefix)
                    run = ingest.http_ingest(running.port, key, _bodies(events, shape), clients)
                    run |= {"backend": backend, "workers": workers, "shape": shape}
                    say(f"   {backend} x{workers} {shape} {clients}: {run['events_per_s']:,.0f}/s")
                    rows.append(run)
    finally:
        backends.drop(work)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | server processes | traffic | clients | events/s | vs 1 client"
        " | p50 ms | p99 ms | 503 retried | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    base: dict[tuple[str, int, str], float] = {}
    for row in rows:
        key = (row["backend"], row["workers"], row["shape"])
        rate = row["events_per_s"]
        base.setdefault(key, rate)
        latency = row["latency_ms"]
        lines.append(
            f"| {row['backend']} | {row['workers']} | {row['shape']} | {row['clients']}"
            f" | {rate:,.0f} | {rate / base[key]:.2f} | {latency.get('p50', 0):,.0f}"
            f" | {latency.get('p99', 0):,.0f} | {row['retries_after_503']}"
            f" | {len(row['errors']) or ''} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    rows: list[dict[str, Any]] = []
    for backend in args.backends:
        for workers in (1, 2) if backend == "postgresql" else (1,):
            rows += _runs(backend, workers, args)
    print(table(rows))
    for row in rows:
        if row["errors"]:
            say(f"errors ({row['backend']} x{row['workers']}): {row['errors']}")


if __name__ == "__main__":
    main()
