"""The series targets of issue 7, side by side with the naive GROUP BY over raw events.

    .venv/bin/python -m bench.series --size 1000000 --backends sqlite postgresql

Uses (or builds) the cached databases of bench.run (bench/load.py) and writes
its results between the SERIES markers of docs/performance.md (bench.run
carries that block over when it regenerates the file).

- S1: a company key, 365 daily buckets (UTC), p99;
- S2: an ATS key over 50 companies, 90 daily buckets, p99;
- S3: a company key, 720 hourly buckets in Asia/Kolkata (every boundary at :30 UTC), p99;
- S4: the CSV of 500 companies x 12 months: memory growth while it is produced.

In-process, a series is what GET /billing/usage/series does after
authentication: a read transaction, visible_companies, and the whole JSON
body produced (computation and encoding). The naive query is one statement
over usage_events: the counted events of each bucket grouped by bucket,
company and cost key (buckets as a VALUES list joined on occurred_at), plus
the interviews whose first counted event lies in each bucket.

`--gc-freeze` calls gc.freeze() before timing: what tally's server does at
start-up (tally.app's lifespan), so what a request there sees. Without it, a series
that triggers a full collection of the garbage collector pays for walking
every object of the process (about 60 ms on the development machine).
"""

import argparse
import gc
import random
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]

from bench.config import REPO, parse
from bench.dataset import HISTORY_DAYS
from bench.load import Meta, obtain
from bench.measure import NOTHING, say, summary_ms
from bench.queries import Query as UsageQuery
from bench.queries import principal
from tally.auth.principal import Principal
from tally.auth.scopes import KeyKind
from tally.auth.tenancy import visible_companies
from tally.core.instants import to_micros
from tally.db.driver import Driver
from tally.db.engine import Database
from tally.reporting.csv_export import csv_lines
from tally.reporting.series import SeriesPlan, plan, series_json

SERIES_START = "<!-- series:start -->"
SERIES_END = "<!-- series:end -->"
MB = 2**20


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    kind: KeyKind
    owner_query: str  # which of bench.queries' owners: Q1 company, Q3 ATS 50, Q4 ATS 500
    granularity: str
    zone: str
    length: timedelta
    offset: timedelta  # window starts at a UTC midnight plus this
    goal_ms: float


TARGETS = (
    Target(
        "S1",
        "company key, 365 daily buckets",
        KeyKind.COMPANY,
        "Q1",
        "day",
        "UTC",
        timedelta(days=365),
        timedelta(0),
        25,
    ),
    Target(
        "S2",
        "ATS key, 50 companies x 90 daily buckets",
        KeyKind.ATS,
        "Q3",
        "day",
        "UTC",
        timedelta(days=90),
        timedelta(0),
        250,
    ),
    Target(
        "S3",
        "company key, 720 hourly buckets, Asia/Kolkata",
        KeyKind.COMPANY,
        "Q1",
        "hour",
        "Asia/Kolkata",
        timedelta(hours=720),
        timedelta(minutes=-330),
        50,
    ),
)

NAIVE_SQL = """
WITH b(i, lo, hi) AS (VALUES {values})
SELECT b.i, e.company_id, e.cost_key, COUNT(*), SUM(e.minutes), SUM(COALESCE(e.credits, 0)), 0
FROM b JOIN usage_events e ON e.occurred_at >= b.lo AND e.occurred_at < b.hi
WHERE e.company_id IN ({ids}) AND e.is_test = FALSE AND e.voided_at IS NULL
GROUP BY b.i, e.company_id, e.cost_key
UNION ALL
SELECT b.i, f.company_id, NULL, 0, 0, 0, COUNT(*)
FROM b JOIN (
  SELECT company_id, MIN(occurred_at) AS first_at FROM usage_events
  WHERE company_id IN ({ids}) AND interview_id IS NOT NULL
    AND is_test = FALSE AND voided_at IS NULL
  GROUP BY company_id, interview_id
) AS f ON f.first_at >= b.lo AND f.first_at < b.hi
GROUP BY b.i, f.company_id
"""


def _caller(meta: Meta, target: Target) -> Principal:
    return principal(meta, UsageQuery(target.owner_query, target.kind, 0, target.label))


def _plans(meta: Meta, target: Target, count: int, seed: int) -> list[SeriesPlan]:
    rng = random.Random(f"{seed}-{target.name}")
    first = meta.anchor - timedelta(days=HISTORY_DAYS)
    first = first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    days = (meta.anchor - target.length - first).days
    starts = [first + timedelta(days=rng.randrange(max(1, days))) for _ in range(count)]
    return [
        plan(
            start + target.offset,
            start + target.offset + target.length,
            target.granularity,
            target.zone,
        )
        for start in starts
    ]


def tally_series(database: Database, caller: Principal, request: SeriesPlan) -> int:
    with database.transaction(write=False) as session:
        companies = visible_companies(session, caller, None)
        return sum(len(text) for text in series_json(session, companies, request))


def naive_series(database: Database, caller: Principal, request: SeriesPlan) -> int:
    with database.transaction(write=False) as session:
        companies = visible_companies(session, caller, None)
        driver = Driver(session)
        ids = [driver.uuid(company.id) for company in companies]
        cast = driver.mark if driver.sqlite else f"CAST({driver.mark} AS BIGINT)"
        values = ", ".join([f"({cast}, {cast}, {cast})"] * len(request.buckets))
        marks = ", ".join([driver.mark] * len(ids))
        params: list[Any] = []
        for index, bucket in enumerate(request.buckets):
            params += [index, to_micros(bucket.start), to_micros(bucket.end)]
        statement = NAIVE_SQL.format(values=values, ids=marks)
        return len(driver.fetchall(statement, [*params, *ids, *ids]))


def _timed(call: Callable[[SeriesPlan], object], plans: list[SeriesPlan]) -> list[float]:
    call(plans[0])
    timings = []
    for request in plans:
        began = time.perf_counter()
        call(request)
        timings.append(time.perf_counter() - began)
    return timings


def _csv_memory(database: Database, meta: Meta) -> dict[str, float]:
    """S4: RSS growth (sampled every 5 ms) while the CSV is produced; then, in a
    second pass, tracemalloc's peak (tracing in the first pass would add its
    own bookkeeping, a few MB, to the RSS measured).
    """
    caller = principal(meta, UsageQuery("Q4", KeyKind.ATS, 0, "S4"))
    end = meta.anchor.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = end.replace(year=end.year - 1)
    request = plan(start, end, "month", "UTC")
    process = psutil.Process()
    with database.transaction(write=False) as session:
        companies = visible_companies(session, caller, None)
        before = process.memory_info().rss
        highest = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                highest[0] = max(highest[0], process.memory_info().rss)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.perf_counter()
        rows = size = 0
        for line in csv_lines(session, companies, request):
            rows += 1
            size += len(line)
        took = time.perf_counter() - began
        done.set()
        sampler.join()
        tracemalloc.start()
        for _ in csv_lines(session, companies, request):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {
        "companies": len(companies),
        "rows": rows - 1,
        "csv_mb": size / MB,
        "seconds": took,
        "rss_growth_mb": (highest[0] - before) / MB,
        "tracemalloc_peak_mb": peak / MB,
    }


def measure(
    database: Database,
    meta: Meta,
    windows: int,
    naive_windows: int,
    seed: int,
    freeze: bool = False,
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for target in TARGETS:
        caller = _caller(meta, target)
        plans = _plans(meta, target, windows, seed)
        if freeze:
            # What gc.freeze() after a server's start-up gives: a full
            # collection no longer walks every object of the process.
            gc.collect()
            gc.freeze()
        mine = summary_ms(_timed(partial(tally_series, database, caller), plans))
        naive = summary_ms(_timed(partial(naive_series, database, caller), plans[:naive_windows]))
        found[target.name] = {"tally": mine, "naive": naive, "buckets": len(plans[0].buckets)}
        say(f"   {target.name} tally p99 {mine['p99']:.1f} ms, naive p99 {naive['p99']:.1f} ms")
    found["S4"] = _csv_memory(database, meta)
    say(f"   S4 {found['S4']}")
    return found


def _table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| backend | measure | target | tally p50 | tally p99 | naive p50 | naive p99"
        " | tally / naive p50 | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, found in results.items():
        for target in TARGETS:
            row = found[target.name]
            mine, naive = row["tally"], row["naive"]
            met = "yes" if mine["p99"] <= target.goal_ms else "**no**"
            lines.append(
                f"| {backend} | {target.name} {target.label} | p99 ≤ {target.goal_ms:g} ms"
                f" | {mine['p50']:.1f} ms | {mine['p99']:.1f} ms"
                f" | {naive['p50']:.1f} ms | {naive['p99']:.1f} ms"
                f" | {mine['p50'] / naive['p50']:.2f} | {met} |"
            )
        s4 = found["S4"]
        met = "yes" if s4["rss_growth_mb"] <= 20 else "**no**"
        lines.append(
            f"| {backend} | S4 CSV, {s4['companies']} companies x 12 months"
            f" ({s4['rows']:,} rows, {s4['csv_mb']:.1f} MB, {s4['seconds']:.1f} s)"
            f" | memory growth ≤ 20 MB | RSS +{s4['rss_growth_mb']:.1f} MB"
            f" | tracemalloc peak {s4['tracemalloc_peak_mb']:.1f} MB"
            f" | {NOTHING} | {NOTHING} | {NOTHING} | {met} |"
        )
    return lines


def write_section(
    out: Path, command: str, size: int, windows: int, naive: int, results: dict[str, Any]
) -> None:
    body = [
        SERIES_START,
        "## Series and CSV (issue 7)",
        "",
        f"`{command}` — {size:,} events, in-process, {windows} random windows per measure"
        f" (naive: the first {naive}). Generated by `bench/series.py`; see its docstring"
        " for what each measure does, and docs/series.md for the analysis of missed targets.",
        "",
        *_table(results),
        SERIES_END,
    ]
    text = out.read_text() if out.exists() else ""
    if SERIES_START in text and SERIES_END in text:
        head, _, rest = text.partition(SERIES_START)
        _, _, tail = rest.partition(SERIES_END)
        text = head + "\n".join(body) + tail
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(body) + "\n"
    out.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.series")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--windows", type=int, default=50)
    parser.add_argument("--naive-windows", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag", default="series", help="suffix of PostgreSQL database names")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() before timing (a full collection then skips start-up objects)",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for backend in args.backends:
        config = parse(
            [
                "--sizes",
                str(args.size),
                "--backends",
                backend,
                "--seed",
                str(args.seed),
                "--tag",
                args.tag,
            ]
        )
        place, meta, _ = obtain(config, args.size, backend)
        database = Database(place.url)
        try:
            say(f"-- {backend} {args.size:,}")
            results[backend] = measure(
                database, meta, args.windows, args.naive_windows, args.seed, args.gc_freeze
            )
        finally:
            database.dispose()
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python -m bench.series", *given])
    write_section(args.out, command.strip(), args.size, args.windows, args.naive_windows, results)


if __name__ == "__main__":
    main()
