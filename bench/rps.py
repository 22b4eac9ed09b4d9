"""Requests per second of GET /billing/usage (Q1) against GET /healthz, same server.

With wrk when it is installed (-t2 -c8), else a Python load loop of eight
keep-alive connections in threads: that loop is itself CPU-bound under the
GIL and competes with the server for the same cores, so its absolute numbers
are lower; the ratio of the two endpoints is what it is for.

Each query's row also gives the CPU time of its report alone, computed in
this process for the same window as the server answers it (a read
transaction, the visible companies, the report's JSON text: what the
request does besides HTTP, authentication and the thread hop), against the
server's CPU per `/healthz`: when the report alone costs about as much as a
whole `/healthz`, no cut of the request's fixed cost brings the ratio near 1.
"""

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]

from bench.queries import Client

CONNECTIONS = 8
THREADS = 2
WARMUP_REQUESTS = 20


def wrk_path(python_load: bool) -> str | None:
    return None if python_load else shutil.which("wrk")


def _parse_wrk(output: str) -> dict[str, Any]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:[^\n]*", output)
    if rate is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output[-1000:]}")
    return {
        "rps": float(rate.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def _with_wrk(wrk: str, port: int, path: str, key: str | None, seconds: float) -> dict[str, Any]:
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s"]
    if key:
        command += ["-H", f"Authorization: Bearer {key}"]
    command.append(f"http://127.0.0.1:{port}{path}")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    return _parse_wrk(done.stdout + done.stderr)


def _python_worker(port: int, path: str, key: str | None, until: float, counts: list[int]) -> None:
    client = Client(port, key, timeout=30)
    ok = bad = 0
    try:
        while time.perf_counter() < until:
            status, _ = client.request("GET", path)
            if status == 200:
                ok += 1
            else:
                bad += 1
    finally:
        client.close()
        counts.extend((ok, bad))


def _with_python(port: int, path: str, key: str | None, seconds: float) -> dict[str, Any]:
    counts: list[int] = []
    began = time.perf_counter()
    until = began + seconds
    threads = [
        threading.Thread(target=_python_worker, args=(port, path, key, until, counts))
        for _ in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - began
    return {"rps": sum(counts[0::2]) / elapsed, "non_2xx": sum(counts[1::2])}


def _warm(port: int, path: str, key: str | None) -> None:
    client = Client(port, key)
    try:
        for _ in range(WARMUP_REQUESTS):
            client.get_ok(path)
    finally:
        client.close()


def measure(
    port: int, usage_path: str, key: str, seconds: float, python_load: bool
) -> dict[str, Any]:
    """Both endpoints, one after the other, with the tool used and the ratio."""
    wrk = wrk_path(python_load)
    results: dict[str, Any] = {"tool": "wrk -t2 -c8" if wrk else "python (8 threads)"}
    for name, path, auth in (("healthz", "/healthz", None), ("q1", usage_path, key)):
        _warm(port, path, auth)
        if wrk:
            results[name] = _with_wrk(wrk, port, path, auth, seconds)
        else:
            results[name] = _with_python(port, path, auth, seconds)
    results["ratio"] = results["q1"]["rps"] / results["healthz"]["rps"]
    return results


QUERY_NAMES = ("Q1", "Q2", "Q3", "Q4")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rps",
        description="Requests/s of /healthz and GET /billing/usage (Q1-Q4) on one server.",
    )
    add = parser.add_argument
    add("--size", type=int, default=100_000, help="events in the history (built once, cached)")
    add("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite"])
    add("--queries", nargs="+", choices=QUERY_NAMES, default=["Q1"])
    add("--seconds", type=float, default=10.0, help="duration of each measurement")
    add("--workers", type=int, default=1, help="tally serve --workers")
    add("--rounds", type=int, default=1, help="alternate /healthz and the queries this often")
    add("--python-load", action="store_true", help="never use wrk")
    add("--seed", type=int, default=7)
    return parser


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants so far."""
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        times = process.cpu_times()
        total += times.user + times.system
    return total


def _one(
    wrk: str | None, port: int, pid: int, path: str, key: str | None, seconds: float
) -> tuple[float, float]:
    """Requests/s, and the server's CPU milliseconds per request."""
    _warm(port, path, key)
    cpu = _cpu_seconds(pid)
    began = time.perf_counter()
    found = (
        _with_wrk(wrk, port, path, key, seconds) if wrk else _with_python(port, path, key, seconds)
    )
    elapsed = time.perf_counter() - began
    if found["non_2xx"]:
        raise RuntimeError(f"{path}: {found['non_2xx']} answers were not 2xx")
    requests = found["rps"] * elapsed
    return float(found["rps"]), (_cpu_seconds(pid) - cpu) * 1000 / max(1.0, requests)


def compare(
    port: int,
    pid: int,
    paths: dict[str, tuple[str, str]],
    seconds: float,
    rounds: int,
    python_load: bool,
) -> dict[str, Any]:
    """Requests/s and server CPU per request of /healthz and each path, `rounds` times; medians.

    On a busy machine requests/s swing with the other load; the server's own
    CPU time per request (PostgreSQL's processes not included) swings less.
    """
    wrk = wrk_path(python_load)
    targets: dict[str, tuple[str, str | None]] = {"healthz": ("/healthz", None), **paths}
    rates: dict[str, list[float]] = {name: [] for name in targets}
    costs: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (path, key) in targets.items():
            rate, cost = _one(wrk, port, pid, path, key, seconds)
            rates[name].append(rate)
            costs[name].append(cost)
    rps = {name: statistics.median(found) for name, found in rates.items()}
    cpu = {name: statistics.median(found) for name, found in costs.items()}
    return {
        "tool": f"wrk -t{THREADS} -c{CONNECTIONS}" if wrk else "python (8 threads)",
        "rps": rps,
        "cpu_ms": cpu,
        "ratio": {name: rps[name] / rps["healthz"] for name in paths},
        "cpu_ratio": {name: cpu["healthz"] / cpu[name] for name in paths},
    }


REPORT_REPEATS = 200


def report_cpu_ms(database: Any, meta: Any, name: str, window: Any) -> float:
    """CPU milliseconds of the query's report alone, in-process (median of five rounds)."""
    from bench import queries
    from tally.auth.tenancy import visible_companies

    query = next(query for query in queries.QUERIES if query.name == name)
    caller = queries.principal(meta, query)
    # With its companies, as authentication hands them to the route (no lookup of them).
    with database.transaction(write=False) as session:
        companies = tuple(visible_companies(session, caller, None))
    caller = replace(caller, companies=companies)
    for _ in range(20):
        queries.report_in_process(database, caller, window)
    rounds = []
    for _ in range(5):
        began = time.process_time()
        for _ in range(REPORT_REPEATS):
            queries.report_in_process(database, caller, window)
        rounds.append((time.process_time() - began) * 1000 / REPORT_REPEATS)
    return statistics.median(rounds)


def main(argv: list[str] | None = None) -> int:
    # Imported here: the suite imports this module for `measure` alone.
    from bench import config as options
    from bench import queries, server
    from bench.load import obtain
    from tally.db.engine import Database

    args = _parser().parse_args(argv)
    config = options.parse(["--sizes", str(args.size), "--seed", str(args.seed)])
    print(
        "| backend | /healthz req/s | query | req/s | ratio | /healthz CPU ms/req "
        "| query CPU ms/req | CPU ratio | the report alone, CPU ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends:
        place, meta, _ = obtain(config, args.size, backend)
        database = Database(place.url)
        try:
            keys = server.create_keys(database, meta)
        finally:
            database.dispose()
        paths = {}
        alone = {}
        for query in queries.QUERIES:
            if query.name in args.queries:
                window = queries.windows(meta, query, 1, args.seed)[0]
                paths[query.name] = (queries.usage_path(window), keys.for_query(query.name))
                database = Database(place.url)
                try:
                    alone[query.name] = report_cpu_ms(database, meta, query.name, window)
                finally:
                    database.dispose()
        with server.running(place.url, args.workers) as running:
            found = compare(
                running.port,
                running.process.pid,
                paths,
                args.seconds,
                args.rounds,
                args.python_load,
            )
        rps, cpu = found["rps"], found["cpu_ms"]
        for name in paths:
            print(
                f"| {backend} | {rps['healthz']:,.0f} | {name} | {rps[name]:,.0f} "
                f"| {found['ratio'][name]:.2f} | {cpu['healthz']:.2f} | {cpu[name]:.2f} "
                f"| {found['cpu_ratio'][name]:.2f} | {alone[name]:.2f} |",
                flush=True,
            )
        print(f"({found['tool']}, {args.seconds:g} s per run, median of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
