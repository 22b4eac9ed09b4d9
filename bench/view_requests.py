"""The two requests of the platform dashboard's view, alone and at once, over HTTP.

    .venv/bin/python -m bench.view_requests [--size 1000000] [--repeats 7]

A view of the dashboard for a platform key of 1,000 companies asks, at the
same time, `GET /billing/usage` (the companies table) and
`GET /billing/usage/series` listing the 100 companies whose trend lines the
table draws (`companySeries`; the chart draws the top-level buckets): the 30
days before the history's anchor, by day, in UTC. Against a real
`tally serve` (one process) on a scratch copy of the benchmark's cached
SQLite history, this times each request alone, two of the same at once, and
the pair at once (wall time until both are answered), p50 of --repeats.
What two requests at once cost beside one shows whether they share the two
cores or take turns for Python's GIL. PYTHONPATH=<other src> measures another
version of tally's server with this script.
"""

import argparse
import json
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench import backends
from bench.config import BENCH_DIR, parse
from bench.dashboard import _keys
from bench.load import obtain
from bench.measure import say
from bench.server import running

PLATFORM = "platform (1,000 companies)"
LISTED = 100


def _get(url: str, key: str) -> tuple[float, bytes]:
    # Only http://127.0.0.1 URLs this script builds.
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    began = time.perf_counter()
    with urllib.request.urlopen(request) as response:  # noqa: S310
        body: bytes = response.read()
    return (time.perf_counter() - began) * 1000, body


def _alone(url: str, key: str) -> float:
    return _get(url, key)[0]


def _together(urls: list[str], key: str) -> float:
    """Wall time (ms) until every URL, asked at once, is answered."""
    threads = [threading.Thread(target=_get, args=(url, key)) for url in urls]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.view_requests")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DIR / "data",
        help="cached databases (another for another version of tally's schema)",
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    config = parse(
        ["--sizes", str(args.size), "--backends", "sqlite", "--data-dir", str(args.data_dir)]
    )
    place, meta, _ = obtain(config, args.size, "sqlite")
    work = backends.scratch_copy(place)
    results: dict[str, Any] = {"size": args.size}
    try:
        key = _keys(work.url, meta)[PLATFORM]
        end = meta.anchor.replace(hour=0, minute=0, second=0, microsecond=0)
        window = (
            f"start={(end - timedelta(days=30)):%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}"
        )
        with running(work.url, workers=1) as server:
            base = f"http://127.0.0.1:{server.port}"
            usage = f"{base}/billing/usage?{window}"
            listed = json.loads(_get(usage, key)[1])["data"]["companies"][:LISTED]
            ids = ",".join(company["companyId"] for company in listed)
            series = f"{base}/billing/usage/series?{window}&granularity=day&companySeries={ids}"
            cases: dict[str, Callable[[], float]] = {
                "usage alone": partial(_alone, usage, key),
                "series alone": partial(_alone, series, key),
                "two usage at once": partial(_together, [usage, usage], key),
                "two series at once": partial(_together, [series, series], key),
                "usage and series at once (a view)": partial(_together, [usage, series], key),
            }
            for name, work_once in cases.items():
                work_once()  # warm the page cache
                timings = [work_once() for _ in range(args.repeats)]
                results[name] = round(statistics.median(timings), 1)
                say(f"   {name}: {results[name]} ms (p50 of {args.repeats})")
    finally:
        backends.drop(work)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
