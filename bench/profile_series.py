"""The server's side of the dashboard's answers for 1,000 companies, timed and profiled.

    .venv/bin/python -m bench.profile_series [--size 1000000] [--repeats 5] [--profile]

On the benchmark's cached SQLite history (bench/data/, built by bench.run or
bench.dashboard), in this process, without HTTP: the platform scope's
`GET /billing/usage` body (computed, wrapped in the envelope and encoded as
the route does) and the `GET /billing/usage/series` body (30 days by day,
in UTC) with every company's buckets, with none (`companySeries=none`) and
with 100 of them. Each is timed (p50 of --repeats, wall clock and this
process's CPU time: on a shared machine the CPU time is the steadier); the computation alone
(tally.reporting.service.series) too. --profile also prints a pyinstrument
profile of each (the `bench` optional dependencies).
"""

import argparse
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.config import BENCH_DIR, parse
from bench.load import obtain
from bench.measure import percentile, say
from tally.companies import repository as companies
from tally.db.engine import Database
from tally.reporting import service
from tally.reporting.series import plan, series_json
from tally.reporting.usage import usage_report
from tally.reporting.views import success_json


def _timed(work: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """p50 of wall time and of this process's CPU time (ms), and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    return _p50(walls), _p50(cpus), result


def _p50(values: list[float]) -> float:
    return round(percentile(sorted(values), 0.5), 1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_series")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DIR / "data",
        help="cached databases (another for another version of tally's schema)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print pyinstrument profiles")
    args = parser.parse_args()
    config = parse(
        ["--sizes", str(args.size), "--backends", "sqlite", "--data-dir", str(args.data_dir)]
    )
    place, meta, _ = obtain(config, args.size, "sqlite")
    database = Database(place.url)
    end = meta.anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)
    request = plan(start, end, "day", "UTC")
    results: dict[str, Any] = {"size": args.size, "window": [str(start), str(end)]}
    try:
        with database.transaction(write=False) as session:
            scope = companies.all_company_refs(session)
            ordered = service.ordered(scope)
            hundred = frozenset(company.id for company in ordered[:100])

            def compute() -> int:
                return sum(1 for _ in service.series(session, ordered, request.instants))

            def usage_body() -> bytes:
                return success_json(usage_report(session, scope, start, end))

            def series_body(selected: frozenset[Any] | None) -> Callable[[], str]:
                return lambda: "".join(series_json(session, scope, request, selected=selected))

            cases: dict[str, Callable[[], Any]] = {
                "series computation only (31 instants)": compute,
                "usage body (2 instants)": usage_body,
                "series body, every company": series_body(None),
                "series body, companySeries=none": series_body(frozenset()),
                "series body, 100 companies": series_body(hundred),
            }
            for name, work in cases.items():
                wall, cpu, body = _timed(work, args.repeats)
                size = len(body) if isinstance(body, bytes | str) else None
                results[name] = {"wall p50 ms": wall, "cpu p50 ms": cpu, "bytes": size}
                say(f"   {name}: {wall} ms ({cpu} ms CPU)" + (f", {size:,} bytes" if size else ""))
                if args.profile:
                    # The `bench` optional dependencies; CI checks types without them.
                    from pyinstrument import Profiler  # type: ignore[import-not-found, unused-ignore]

                    profiler = Profiler(interval=0.001)
                    profiler.start()
                    work()
                    profiler.stop()
                    print(profiler.output_text(unicode=False, color=False, show_all=False))
    finally:
        database.dispose()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
