"""Scale-out on one PostgreSQL: 1, 2 and 4 server processes, side by side in one run.

    .venv/bin/python -m bench.scaleout --size 20000 --events 64000 --seed 7

For each process count N a scratch copy of the cached benchmark database is
served by N processes, and measured:

- HTTP ingestion: the same --events fresh events (new ids, the same
  companies, so every N gets the identical workload) POSTed in batches of
  1,000 by --clients-per-process x N client processes (bench/loadgen.py),
  for two traffic shapes: mixed (the dataset's stream: a batch holds ~600 of
  the 1,000 companies) and grouped (sorted by company: a batch holds a few);
- Q1 requests/s (a company key, 30 days, GET /billing/usage) with wrk, the
  same number of connections, spread over the processes
  (bench/wrkspread.py);
- during each, what bounds it (bench/observe.py): CPU of each server
  process, of the database's PostgreSQL backends and of the machine,
  commits/s, WAL bytes and syncs, lock waits sampled from pg_stat_activity,
  and the load generator's own CPU.

Layouts (--layout): `ports` (default) runs N separate `tally serve`
processes on N ports, each client process or wrk thread bound to one of
them, so the load is spread exactly evenly, as a load balancer in front of N
machines would; `workers` runs one `tally serve --workers N` on one port,
where the kernel hands each accepted connection to whichever worker accepts
first (with a few long-lived keep-alive connections that can be uneven).

Rate limits go through Redis (TALLY_REDIS_URL, --redis), as a deployment
of several processes would; the bench keys have the highest limits, so no
request is refused. Prints Markdown tables (docs/performance.md, "Scale-out:
1, 2 and 4 server processes") and writes the raw results as JSON to
bench/results/.
"""

import argparse
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import backends, ingest, loadgen, queries, server, wrkspread
from bench.backends import Place
from bench.config import BENCH_DIR, PG_ADMIN_URL, parse
from bench.load import Meta, obtain
from bench.machine import describe
from bench.measure import NOTHING, say
from bench.observe import Observer
from tally.db.engine import Database

SHAPES = ("mixed", "grouped")
LAYOUTS = ("ports", "workers")
PRIVATE = "private"
REDIS_START_SECONDS = 10.0


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout")
    add = parser.add_argument
    add("--size", type=int, default=20_000, help="events in the cached history")
    add("--events", type=int, default=64_000, help="fresh events per ingestion run")
    add("--processes", type=int, nargs="+", default=[1, 2, 4], help="server process counts")
    add("--clients-per-process", type=int, default=4, help="ingestion clients per process")
    add("--connections-per-process", type=int, default=4, help="wrk connections per process")
    add("--rps-seconds", type=float, default=10.0, help="duration of each wrk run")
    add("--shapes", nargs="*", choices=SHAPES, default=list(SHAPES), help="none: Q1 only")
    add("--layout", choices=LAYOUTS, default="ports")
    add(
        "--redis",
        default=PRIVATE,
        help="TALLY_REDIS_URL of the servers; 'private' (default): a redis-server of the"
        " run's own, so its command count is the servers' alone; '' for none",
    )
    add("--seed", type=int, default=7)
    add("--tag", default="scaleout", help="suffix of the PostgreSQL database names")
    add("--pg-admin-url", default=PG_ADMIN_URL)
    add("--start-timeout", type=float, default=180.0, help="seconds a server may take to start")
    add("--tables", type=Path, help="only print the tables of a saved results file")
    return parser.parse_args(argv)


@contextmanager
def private_redis(choice: str) -> Iterator[str | None]:
    """The Redis URL the servers use: none, the one given, or a private redis-server."""
    if choice != PRIVATE:
        yield choice or None
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: --redis URL, or --redis '' for none")
    port = server.free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + REDIS_START_SECONDS
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def _servers(url: str, processes: int, layout: str) -> Iterator[list[server.Server]]:
    """N processes: N `tally serve` on N ports, or one `tally serve --workers N`."""
    with ExitStack() as stack:
        if layout == "workers":
            yield [stack.enter_context(server.running(url, processes))]
        else:
            # One after the other: each migrates (a no-op) before it listens.
            yield [stack.enter_context(server.running(url, 1)) for _ in range(processes)]


def _observer(
    args: argparse.Namespace, database: str, running: Sequence[server.Server]
) -> Observer:
    conninfo = args.pg_admin_url.replace("postgresql+psycopg://", "postgresql://")
    pids = [item.process.pid for item in running]
    return Observer(conninfo, database, pids, redis_url=os.environ.get("TALLY_REDIS_URL"))


def _workload(meta: Meta, args: argparse.Namespace, shape: str, processes: int) -> list[bytes]:
    """The same events for every process count (same seed), with ids of their own."""
    prefix = f"s{processes}-{shape}-{uuid.uuid4().hex[:6]}-"
    events = ingest.fresh_events(meta, args.seed + 5000, args.events, prefix)
    if shape == "grouped":
        events = sorted(events, key=lambda item: (item["companyId"], item["occurredAt"]))
    return ingest.encode_batches(events)


def _measure(
    args: argparse.Namespace, place: Place, meta: Meta, processes: int, wrk: str | None
) -> list[dict[str, Any]]:
    work = backends.scratch_copy(place)
    rows: list[dict[str, Any]] = []
    base = {"processes": processes, "layout": args.layout}
    try:
        database = Database(work.url)
        try:
            keys = server.create_keys(database, meta)
        finally:
            database.dispose()
        with _servers(work.url, processes, args.layout) as running:
            ports = [item.port for item in running]
            clients = args.clients_per_process * processes
            for shape in args.shapes:
                bodies = _workload(meta, args, shape, processes)
                watch = _observer(args, work.name, running).start()
                run = loadgen.run(ports, keys.platform, bodies, clients)
                run |= base | {"kind": "ingest", "shape": shape, "observed": watch.stop()}
                steady = run["steady_events_per_s"] or 0.0
                say(
                    f"   x{processes} {shape}: {run['events_per_s']:,.0f}/s overall,"
                    f" {steady:,.0f}/s steady, {len(run['errors'])} errors"
                )
                rows.append(run)
            if wrk is not None:
                window = queries.windows(meta, queries.QUERIES[0], 1, args.seed)[0]
                path = queries.usage_path(window)
                connections = args.connections_per_process * processes
                queries.Client(ports[0], keys.company).get_ok(path)  # warm, and a check
                watch = _observer(args, work.name, running).start()
                load = wrkspread.run(wrk, ports, path, keys.company, connections, args.rps_seconds)
                load |= base | {"kind": "q1", "observed": watch.stop()}
                say(f"   x{processes} Q1: {load['rps']:,.0f} requests/s ({load['tool']})")
                rows.append(load)
    finally:
        backends.drop(work)
    return rows


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%" if share >= 0.01 else f"{share * 100:.1f}%"


def _per(observed: dict[str, Any], share: str, units: float) -> str:
    """CPU seconds (a share of one core x the run's seconds) per unit of work."""
    if units <= 0:
        return NOTHING
    return f"{observed[share] * observed['seconds'] / units:.2f}"


def _each(observed: dict[str, Any], name: str, requests: int, scale: float = 1.0) -> str:
    if name not in observed or requests <= 0:
        return NOTHING
    return f"{observed[name] * scale / requests:.1f}"


def _server_cpu(observed: dict[str, Any]) -> str:
    shares = observed["server_cpu_share"]
    return " + ".join(_pct(share) for share in shares) or "0%"


def ingest_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| traffic | server processes | clients | events/s (steady) | vs 1 process"
        " | events/s (overall) | p50 ms | p99 ms | 503 retried | errors"
        " | server CPU per process | PG backends CPU | machine busy | client CPU"
        " | CPU s per 1,000 events: server | PG | commits/s | WAL MB/s | WAL syncs/s"
        " | backends active | waiting on Lock | waiting on LWLock | waiting on I/O"
        " | connections (peak) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base: dict[str, float] = {}
    for row in (item for item in rows if item["kind"] == "ingest"):
        rate = row["steady_events_per_s"] or row["events_per_s"]
        base.setdefault(row["shape"], rate)
        observed, latency = row["observed"], row["latency_ms"]
        per_s, activity = observed["pg_per_s"], observed["activity"]
        lines.append(
            f"| {row['shape']} | {row['processes']} | {row['clients']} | {rate:,.0f}"
            f" | {rate / base[row['shape']]:.2f} | {row['events_per_s']:,.0f}"
            f" | {latency.get('p50', 0):,.0f} | {latency.get('p99', 0):,.0f}"
            f" | {row['retries_after_503']} | {len(row['errors']) or ''}"
            f" | {_server_cpu(observed)} | {_pct(observed['pg_backend_cpu'])}"
            f" | {_pct(observed['machine_busy'])} | {_pct(row['client_cpu_share'])}"
            f" | {_per(observed, 'server_cpu_total', row['accepted'] / 1000)}"
            f" | {_per(observed, 'pg_backend_cpu', row['accepted'] / 1000)}"
            f" | {per_s['commits']:,.1f} | {per_s['wal_bytes'] / 1e6:,.1f}"
            f" | {per_s['wal_syncs']:,.1f} | {activity['active']:.1f} | {activity['lock']:.1f}"
            f" | {activity['lwlock']:.1f} | {activity['io']:.1f}"
            f" | {observed.get('connections_peak', NOTHING)} |"
        )
    return "\n".join(lines)


def q1_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| server processes | wrk | requests/s | vs 1 process | p50 ms | p99 ms | non-2xx"
        " | server CPU per process | PG backends CPU | machine busy | wrk CPU"
        " | CPU ms per request: server | PG | Redis round trips per request"
        " | Redis commands per request | Redis CPU µs per request |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base: float | None = None
    for row in (item for item in rows if item["kind"] == "q1"):
        base = base or row["rps"]
        observed, latency = row["observed"], row["latency_ms"]
        lines.append(
            f"| {row['processes']} | `{row['tool']}` | {row['rps']:,.0f} | {row['rps'] / base:.2f}"
            f" | {latency.get('p50', 0):,.1f} | {latency.get('p99', 0):,.1f} | {row['non_2xx']}"
            f" | {_server_cpu(observed)} | {_pct(observed['pg_backend_cpu'])}"
            f" | {_pct(observed['machine_busy'])} | {_pct(row['client_cpu_share'])}"
            f" | {_per(observed, 'server_cpu_total', row['requests'] / 1000)}"
            f" | {_per(observed, 'pg_backend_cpu', row['requests'] / 1000)}"
            f" | {_each(observed, 'redis_scripts', row['requests'])}"
            f" | {_each(observed, 'redis_commands', row['requests'])}"
            f" | {_each(observed, 'redis_cpu_seconds', row['requests'], 1e6)} |"
        )
    return "\n".join(lines)


def _print_tables(rows: list[dict[str, Any]]) -> None:
    print(ingest_table(rows))
    print()
    print(q1_table(rows))


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    if args.tables is not None:
        _print_tables(json.loads(args.tables.read_text())["rows"])
        return
    reason = backends.reachable(args.pg_admin_url)
    if reason is not None:
        raise SystemExit(f"PostgreSQL does not answer at {args.pg_admin_url}: {reason}")
    with private_redis(args.redis) as redis_url:
        if redis_url:
            os.environ["TALLY_REDIS_URL"] = redis_url
            os.environ["TALLY_REDIS_KEY_PREFIX"] = f"tally-bench-{uuid.uuid4().hex[:8]}"
        else:
            os.environ.pop("TALLY_REDIS_URL", None)
        _run(args)


def _run(args: argparse.Namespace) -> None:
    wrk = wrkspread.wrk_path()
    if wrk is None:
        say("   wrk is not installed (apt-get install wrk): Q1 requests/s are skipped")
    machine = describe(args.pg_admin_url)
    config = parse(
        [
            *("--sizes", str(args.size), "--backends", "postgresql", "--seed", str(args.seed)),
            *("--tag", args.tag, "--pg-admin-url", args.pg_admin_url),
        ]
    )
    place, meta, _ = obtain(config, args.size, "postgresql")
    # A loaded machine can take a minute or more to start a server's workers.
    server.START_TIMEOUT = args.start_timeout
    results = BENCH_DIR / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = results / f"scaleout-{stamp}.json"
    rows: list[dict[str, Any]] = []
    for processes in args.processes:
        rows += _measure(args, place, meta, processes, wrk)
        # Saved after each process count: a later failure keeps what was measured.
        saved = {"args": vars(args), "machine": machine, "rows": rows}
        target.write_text(json.dumps(saved, indent=1, default=str))
    _print_tables(rows)
    for row in rows:
        if row.get("errors"):
            say(f"errors (x{row['processes']} {row.get('shape')}): {row['errors']}")
    say(f"   raw results: {target}")


if __name__ == "__main__":
    main()
