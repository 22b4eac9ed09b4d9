"""tally beside DuckDB and chDB (ClickHouse in process), on the same events.

    .venv/bin/python -m bench.peers --size 1000000 --backends sqlite postgresql

Uses (or builds) the cached tally databases of bench.run (bench/load.py),
exports the events of the first backend's database, voids and test events
included, to a Parquet file (cached beside it, in time order), and loads
that file into DuckDB and chDB (bench/peer_engines.py). Then, in-process and
on the same random windows (bench/queries.py), it times Q1-Q4 and two
series of one company over 365 daily buckets (UTC and Asia/Kolkata) in
each engine and in tally, and checks every answer of every engine equal to
tally's; any difference aborts the run before anything is written.

tally's time is what a request computes after authentication (a read
transaction, visible_companies, the report as the API returns it: for the
series the whole JSON text); a peer's is its SQL statement with its rows
fetched into Python. Its results go between the PEERS markers of
docs/performance.md.

`--data-dir /elsewhere` reads tally databases another run built, never
writing there: it needs their meta file, copies a SQLite file into
`--work-dir` first, and reads a PostgreSQL database as it is.
"""

import argparse
import json
import random
import re
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import chdb  # type: ignore[import-untyped, unused-ignore]
import duckdb
import psycopg
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from bench import backends
from bench.backends import Place
from bench.config import BENCH_DIR, PG_ADMIN_URL, REPO, parse
from bench.dataset import HISTORY_DAYS, World, build_world
from bench.load import Meta, obtain, schema_head
from bench.measure import NOTHING, say, summary_ms
from bench.peer_engines import ChEngine, DuckEngine, Engine, Row
from bench.queries import QUERIES, Query, principal, report_in_process, windows
from tally.auth.tenancy import visible_companies
from tally.core.instants import to_micros
from tally.core.quantities import from_scaled
from tally.db.engine import Database
from tally.reporting.series import SeriesPlan, plan, series_json

PEERS_START = "<!-- peers:start -->"
PEERS_END = "<!-- peers:end -->"
WARMUP = 3
CHUNK = 200_000
COLUMNS = (
    "id, company_id, cost_key, occurred_at, minutes, interview_id, is_test, agent_focus,"
    " credits, voided_at"
)
# Per company: interviews, and per cost key (events, amount in the company's unit).
View = tuple[int, dict[str, tuple[int, Decimal]]]


@dataclass(frozen=True)
class Series:
    name: str
    label: str
    zone: str
    offset: timedelta  # from a UTC midnight to the zone's midnight


SERIES = (
    Series("S1", "company key, 365 daily buckets, UTC", "UTC", timedelta(0)),
    Series(
        "S1z",
        "company key, 365 daily buckets, Asia/Kolkata",
        "Asia/Kolkata",
        timedelta(minutes=-330),
    ),
)


class Mismatch(Exception):
    """An engine answered differently from tally: the run stops, nothing is written."""


# --- the tally databases -------------------------------------------------------------------


@dataclass
class TallyDb:
    backend: str
    place: Place
    meta: Meta
    source_bytes: int = 0

    @property
    def label(self) -> str:
        return f"tally {'SQLite' if self.backend == 'sqlite' else 'PostgreSQL'}"


def _foreign_tally(
    args: argparse.Namespace, backend: str, config_argv: list[str]
) -> tuple[Place, Meta]:
    """A database another run built under --data-dir: used as it is, never written."""
    config = parse(config_argv)
    place = backends.cached(config, backend, args.size)
    path = backends.meta_path(config, place)
    if not path.exists() or not backends.exists(place):
        raise SystemExit(f"{place.name}: not ready (no meta file {path}); build it first")
    meta = Meta(**json.loads(path.read_text()))
    if meta.schema != schema_head(place.url):
        raise SystemExit(f"{place.name}: schema {meta.schema} is not tally's current one")
    if backend != "sqlite":
        return place, meta
    copy = args.work_dir / f"copy-{place.path.name}"
    if not copy.exists() or copy.stat().st_mtime < place.path.stat().st_mtime:
        say(f"   copying {place.path} to {copy}")
        args.work_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(place.path, copy)
    return Place("sqlite", f"sqlite:///{copy}", str(copy)), meta


def obtain_tally(args: argparse.Namespace, backend: str) -> TallyDb:
    own = args.data_dir.resolve() == args.work_dir.resolve()
    tag = args.tag if args.tag is not None else ("peers" if own else "")
    argv = ["--sizes", str(args.size), "--backends", backend, "--seed", str(args.seed)]
    argv += ["--tag", tag, "--data-dir", str(args.data_dir), "--pg-admin-url", args.pg_admin_url]
    if own:
        place, meta, _ = obtain(parse(argv), args.size, backend)
    else:
        place, meta = _foreign_tally(args, backend, argv)
    return TallyDb(backend, place, meta, _tally_bytes(place))


def _tally_bytes(place: Place) -> int:
    if place.backend == "sqlite":
        backends.checkpoint(place)
        return place.path.stat().st_size
    conninfo = place.url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        found = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        assert found is not None
        return int(found[0])


# --- the events, exported once to Parquet --------------------------------------------------


def _raw_rows(place: Place) -> Iterator[list[tuple[Any, ...]]]:
    """usage_events as the driver returns it, in chunks."""
    statement = f"SELECT {COLUMNS} FROM usage_events"
    if place.backend == "sqlite":
        lite = sqlite3.connect(f"file:{place.path}?mode=ro", uri=True)
        try:
            rows = lite.execute(statement)
            while chunk := rows.fetchmany(CHUNK):
                yield chunk
        finally:
            lite.close()
        return
    conninfo = place.url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo) as connection, connection.cursor(name="peers") as cursor:
        cursor.execute(statement)
        while chunk := cursor.fetchmany(CHUNK):
            yield chunk


def _batch(rows: list[tuple[Any, ...]], ids: dict[Any, str]) -> pa.RecordBatch:
    (event, company, key, occurred, minutes, interview, test, focus, credits, voided) = zip(
        *rows, strict=True
    )

    def company_text(value: Any) -> str:
        found = ids.get(value)
        if found is None:
            found = ids[value] = str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))
        return found

    def instants(values: Sequence[int | None]) -> pa.Array:
        return pa.array(values, pa.int64()).cast(pa.timestamp("us"))

    return pa.RecordBatch.from_arrays(
        [
            pa.array(event, pa.string()),
            pa.array([company_text(value) for value in company], pa.string()),
            pa.array(key, pa.string()),
            instants(occurred),
            pa.array(minutes, pa.int64()),
            pa.array(interview, pa.string()),
            pa.array([bool(value) for value in test], pa.bool_()),
            pa.array(focus, pa.string()),
            pa.array(credits, pa.int64()),
            instants(voided),
        ],
        names=[name.strip() for name in COLUMNS.split(",")],
    )


def export(tally: TallyDb, work_dir: Path) -> tuple[Path, float, int]:
    """The events of a tally database as Parquet, in time order (cached per build)."""
    meta = tally.meta
    path = work_dir / f"peers-{meta.size}-{meta.seed}.parquet"
    stamp = path.with_suffix(".json")
    built = {"backend": meta.backend, "built_at": meta.built_at, "events": meta.events}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == built:
        say(f"   reusing {path}")
        return path, 0.0, meta.events
    began = time.perf_counter()
    ids: dict[Any, str] = {}
    table = pa.Table.from_batches([_batch(rows, ids) for rows in _raw_rows(tally.place)])
    if table.num_rows != meta.events:
        raise SystemExit(f"{tally.place.name}: {table.num_rows:,} rows, meta says {meta.events:,}")
    table = table.sort_by([("occurred_at", "ascending"), ("id", "ascending")])
    work_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=1_000_000)
    stamp.write_text(json.dumps(built) + "\n")
    took = time.perf_counter() - began
    say(f"   exported {table.num_rows:,} events to {path} in {took:.1f}s")
    return path, took, table.num_rows


# --- answers, reduced to one comparable form -----------------------------------------------


def _tally_company(entry: dict[str, Any]) -> View:
    unit = "minutesUsed" if entry["billingSystem"] == "minutes" else "creditsUsed"
    return entry["totalInterviews"], {
        item["costKey"]: (item["events"], Decimal(str(item[unit])))
        for item in entry["breakdownByCostKey"]
    }


def tally_usage_view(report: str) -> dict[tuple[int, str], View]:
    companies = json.loads(report, parse_float=Decimal)["companies"]
    return {(0, entry["companyId"]): _tally_company(entry) for entry in companies}


def tally_series_view(text: str, request: SeriesPlan) -> dict[tuple[int, str], View]:
    starts = [to_micros(bucket.start) // 1_000_000 for bucket in request.buckets]
    found = {}
    for company in json.loads(text, parse_float=Decimal)["data"]["companies"]:
        for start, bucket in zip(starts, company["buckets"], strict=True):
            found[(start, company["companyId"])] = _tally_company(
                bucket | {"billingSystem": company["billingSystem"]}
            )
    return found


def peer_view(
    rows: list[Row], billing: dict[str, str], cells: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], View]:
    """Rows of a peer as tally's view of the same cells (absent cells: nothing counted)."""
    interviews: dict[tuple[int, str], int] = {}
    keys: dict[tuple[int, str], dict[str, tuple[int, Decimal]]] = {}
    for company, bucket, key, events, minutes, credits, counted in rows:
        cell = (bucket, company)
        if key == "":
            interviews[cell] = interviews.get(cell, 0) + counted
        elif events:
            amount = minutes if billing[company] == "minutes" else credits
            keys.setdefault(cell, {})[key] = (events, from_scaled(amount))
    extra = (set(interviews) | set(keys)) - set(cells)
    if extra:
        raise Mismatch(f"cells tally does not have: {sorted(extra)[:3]}")
    return {cell: (interviews.get(cell, 0), keys.get(cell, {})) for cell in cells}


def check(name: str, what: str, mine: dict[tuple[int, str], View], theirs: dict[Any, View]) -> None:
    if mine == theirs:
        return
    for cell, view in mine.items():
        if theirs.get(cell) != view:
            raise Mismatch(
                f"!! {name} differs from tally on {what}, cell {cell}:"
                f"\n   tally: {view}\n   {name}: {theirs.get(cell)}"
            )
    raise Mismatch(f"!! {name} differs from tally on {what}")


# --- timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contestant:
    label: str
    call: Callable[[Any], Any]
    items: Sequence[Any]


def side_by_side(contestants: Sequence[Contestant]) -> dict[str, tuple[list[float], list[Any]]]:
    """Seconds and answer per item of each contestant.

    The contestants take turns item by item, so a busy moment of the shared
    machine falls on all of them alike; WARMUP rounds first, not counted.
    """
    count = len(contestants[0].items)
    for index in range(min(WARMUP, count)):
        for contestant in contestants:
            contestant.call(contestant.items[index])
    found: dict[str, tuple[list[float], list[Any]]] = {c.label: ([], []) for c in contestants}
    for index in range(count):
        for contestant in contestants:
            began = time.perf_counter()
            answer = contestant.call(contestant.items[index])
            found[contestant.label][0].append(time.perf_counter() - began)
            found[contestant.label][1].append(answer)
    return found


def _companies(world: World, query_owner: str) -> list[str]:
    if query_owner in {"Q1", "Q2"}:
        return [str(world.companies[1]["id"])]
    ats = world.ats[1]["id"] if query_owner == "Q3" else world.big_ats
    return world.companies_of(str(ats))


def series_plans(meta: Meta, target: Series, count: int, seed: int) -> list[SeriesPlan]:
    """`count` windows of 365 days starting at random midnights of the zone."""
    rng = random.Random(f"{seed}-{target.name}")
    first = meta.anchor - timedelta(days=HISTORY_DAYS)
    first = first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    days = (meta.anchor - timedelta(days=366) - first).days
    starts = [
        first + timedelta(days=rng.randrange(max(1, days))) + target.offset for _ in range(count)
    ]
    return [plan(start, start + timedelta(days=365), "day", target.zone) for start in starts]


def tally_series_text(database: Database, tally: TallyDb, request: SeriesPlan) -> str:
    caller = principal(tally.meta, QUERIES[0])
    with database.transaction(write=False) as session:
        companies = visible_companies(session, caller, None)
        return "".join(series_json(session, companies, request))


def measure(
    tallies: list[TallyDb], engines: list[Engine], count: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Per measure: per engine its timing summary; every peer answer checked against tally."""
    source = tallies[0].meta
    world = build_world(source.seed, source.anchor)
    billing = {str(company["id"]): str(company["billingSystem"]) for company in world.companies}
    results: dict[str, dict[str, Any]] = {}
    databases = {tally.label: Database(tally.place.url) for tally in tallies}
    try:
        for query in QUERIES:
            results[query.name] = _measure_query(
                query, tallies, databases, engines, world, billing, count, seed
            )
        for target in SERIES:
            results[target.name] = _measure_series(
                target, tallies, databases, engines, world, billing, count, seed
            )
    finally:
        for database in databases.values():
            database.dispose()
    return results


def _usage(engine: Engine, companies: list[str], window: tuple[datetime, datetime]) -> list[Row]:
    return engine.usage(companies, *window)


def _daily(engine: Engine, companies: list[str], zone: str, request: SeriesPlan) -> list[Row]:
    return engine.daily(companies, request.start, request.end, zone)


def _checked(tally: TallyDb, source: Meta) -> bool:
    """Only a build of the same instant holds the very events the peers loaded."""
    return tally.meta.now == source.now and tally.meta.events == source.events


def _compare(
    what: str,
    tallies: list[TallyDb],
    engines: list[Engine],
    timed: dict[str, tuple[list[float], list[Any]]],
    expected: list[dict[tuple[int, str], View]],
    billing: dict[str, str],
) -> dict[str, Any]:
    """Each peer's answers checked against tally's; the timing summary of everyone."""
    source = tallies[0].meta
    for engine in engines:
        for index, (mine, rows) in enumerate(zip(expected, timed[engine.name][1], strict=True)):
            view = peer_view(rows, billing, list(mine))
            check(engine.name, f"{what}, window {index}", mine, view)
    found: dict[str, Any] = {
        tally.label: summary_ms(timed[tally.label][0]) | {"checked": _checked(tally, source)}
        for tally in tallies
    }
    found |= {engine.name: summary_ms(timed[engine.name][0]) for engine in engines}
    say(f"   {what}: " + ", ".join(f"{k} p50 {v['p50']:.1f} ms" for k, v in found.items()))
    return found


def _measure_query(
    query: Query,
    tallies: list[TallyDb],
    databases: dict[str, Database],
    engines: list[Engine],
    world: World,
    billing: dict[str, str],
    count: int,
    seed: int,
) -> dict[str, Any]:
    companies = _companies(world, query.name)
    contestants = [
        Contestant(
            tally.label,
            partial(report_in_process, databases[tally.label], principal(tally.meta, query)),
            windows(tally.meta, query, count, seed),
        )
        for tally in tallies
    ]
    items = windows(tallies[0].meta, query, count, seed)
    contestants += [
        Contestant(engine.name, partial(_usage, engine, companies), items) for engine in engines
    ]
    timed = side_by_side(contestants)
    expected = [tally_usage_view(report) for report in timed[tallies[0].label][1]]
    return _compare(query.name, tallies, engines, timed, expected, billing)


def _measure_series(
    target: Series,
    tallies: list[TallyDb],
    databases: dict[str, Database],
    engines: list[Engine],
    world: World,
    billing: dict[str, str],
    count: int,
    seed: int,
) -> dict[str, Any]:
    companies = _companies(world, "Q1")
    contestants = [
        Contestant(
            tally.label,
            partial(tally_series_text, databases[tally.label], tally),
            series_plans(tally.meta, target, count, seed),
        )
        for tally in tallies
    ]
    plans = series_plans(tallies[0].meta, target, count, seed)
    contestants += [
        Contestant(engine.name, partial(_daily, engine, companies, target.zone), plans)
        for engine in engines
    ]
    timed = side_by_side(contestants)
    expected = [
        tally_series_view(text, request)
        for text, request in zip(timed[tallies[0].label][1], plans, strict=True)
    ]
    return _compare(target.name, tallies, engines, timed, expected, billing)


# --- the report -----------------------------------------------------------------------------


def _ms(summary: dict[str, Any], key: str) -> str:
    return f"{summary[key]:,.1f}" if summary.get("n") else NOTHING


def _ratio(tally: dict[str, Any] | None, peer: dict[str, Any], key: str) -> str:
    if not tally or not tally.get("n") or not peer.get("n"):
        return NOTHING
    value = tally[key] / peer[key]
    text = f"{value:.2f}" if value < 10 else f"{value:,.0f}"
    return text if value < 1 else f"**{text}**"


def _latency_table(run: dict[str, Any]) -> list[str]:
    tally_labels = [tally["label"] for tally in run["tallies"]]
    head = "| measure | engine | p50 ms | p99 ms |"
    rule = "|---|---|---|---|"
    for label in tally_labels:
        head += f" {label} ÷ engine, p50 | p99 |"
        rule += "---|---|"
    lines = [head, rule]
    labels = {query.name: query.label for query in QUERIES} | {s.name: s.label for s in SERIES}
    for measure_name, found in run["measures"].items():
        for engine, summary in found.items():
            cells = [f"{measure_name} {labels[measure_name]}", engine]
            cells += [_ms(summary, "p50"), _ms(summary, "p99")]
            for label in tally_labels:
                if engine in tally_labels:
                    cells += [NOTHING, NOTHING]
                else:
                    cells += [_ratio(found.get(label), summary, key) for key in ("p50", "p99")]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _storage_table(run: dict[str, Any]) -> list[str]:
    events = run["events"]
    lines = [
        "| engine | on disk | bytes per event | loaded in | what it holds |",
        "|---|---|---|---|---|",
    ]
    for row in run["storage"]:
        size = row["bytes"]
        lines.append(
            f"| {row['engine']} | {size / 2**20:,.0f} MB | {size / events:,.0f}"
            f" | {row['load']} | {row['holds']} |"
        )
    return lines


def render_size(run: dict[str, Any]) -> list[str]:
    size = run["size"]
    unchecked = [t["label"] for t in run["tallies"] if not t["checked"]]
    lines = [
        f"<!-- peers:size-{size}:start -->",
        f"### {size:,} events",
        "",
        f"`{run['command']}` — {run['events']:,} events (seed {run['seed']}), {run['windows']}"
        f" random windows per measure, in-process, finished {run['finished_at'][:16]} UTC."
        f" Every answer of {', '.join(run['peers'])} was checked equal to"
        f" {run['tallies'][0]['label']}'s.",
    ]
    if unchecked:
        lines.append(
            f" {', '.join(unchecked)}: its own build of the same seed (another build instant,"
            " so other timestamps), timed on windows at the same places in its history;"
            " not compared with the peers."
        )
    lines += ["", *_latency_table(run), "", *_storage_table(run), f"<!-- peers:size-{size}:end -->"]
    return lines


def _blocks(text: str) -> tuple[dict[int, str], str | None]:
    sizes = {
        int(match.group(1)): match.group(0)
        for match in re.finditer(
            r"<!-- peers:size-(\d+):start -->.*?<!-- peers:size-\1:end -->", text, re.S
        )
    }
    analysis = re.search(r"<!-- peers:analysis:start -->.*?<!-- peers:analysis:end -->", text, re.S)
    return sizes, analysis.group(0) if analysis else None


INTRO = """\
## tally beside DuckDB and chDB

The same events in three engines: tally (its running totals, SQLite and
PostgreSQL), DuckDB {duckdb} and chDB {chdb} (ClickHouse {clickhouse} in
process), generated by `bench/peers.py` (see its docstring and
bench/README.md). The peers load the events of tally's database of the same
seed and size, voids and test events included, from one Parquet file in time
order: ClickHouse as a `MergeTree` ordered by `(company_id, occurred_at)` with
`LowCardinality` cost keys, merged to one part; DuckDB as a table in time
order (its zone maps). Amounts are integer millionths in every engine. Their
SQL has SPEC section 2's semantics (voided and test events excluded, an
interview counted at its first counted event); the run aborts if any answer
differs from tally's. tally's time is the report as the API computes it
(read transaction, visible companies, the whole answer; for a series its JSON
text); a peer's is its statement with the rows fetched into Python. The
peers use both cores (their default), tally one. A ratio is tally ÷ peer: below
1 tally is faster, **bold** where it is not.
"""


def write_section(out: Path, run: dict[str, Any]) -> None:
    text = out.read_text() if out.exists() else ""
    sizes, analysis = _blocks(text)
    sizes[run["size"]] = "\n".join(render_size(run))
    body = [
        PEERS_START,
        INTRO.format(**run["versions"]),
        *(sizes[size] + "\n" for size in sorted(sizes)),
        analysis or "<!-- peers:analysis:start -->\n<!-- peers:analysis:end -->",
        PEERS_END,
    ]
    if PEERS_START in text and PEERS_END in text:
        head, _, rest = text.partition(PEERS_START)
        _, _, tail = rest.partition(PEERS_END)
        text = head + "\n".join(body) + tail
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(body) + "\n"
    out.write_text(text)


# --- the command ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=__doc__.split("\n")[0]
    )
    add = parser.add_argument
    add("--size", type=int, default=1_000_000, help="events in the history")
    add(
        "--backends",
        nargs="+",
        choices=("sqlite", "postgresql"),
        default=["sqlite", "postgresql"],
        help="tally backends; the peers load the first one's events",
    )
    add("--windows", type=int, default=50, help="random windows per measure")
    add("--seed", type=int, default=7)
    add("--data-dir", type=Path, default=BENCH_DIR / "data", help="tally's cached databases")
    add("--work-dir", type=Path, default=BENCH_DIR / "data", help="Parquet and peer databases")
    add(
        "--tag",
        default=None,
        help="PostgreSQL name suffix (default: peers, or none with a foreign --data-dir)",
    )
    add("--pg-admin-url", default=PG_ADMIN_URL)
    add("--out", type=Path, default=REPO / "docs" / "performance.md")
    add("--results-dir", type=Path, default=BENCH_DIR / "results")
    return parser


def _versions(engines: list[Engine]) -> dict[str, str]:
    clickhouse = NOTHING
    for engine in engines:
        if isinstance(engine, ChEngine):
            clickhouse = engine.server_version()
    return {"duckdb": duckdb.__version__, "chdb": chdb.__version__, "clickhouse": clickhouse}


def _storage(
    tallies: list[TallyDb],
    loads: dict[str, dict[str, float]],
    engines: list[Engine],
    parquet: Path,
    export_seconds: float,
) -> list[dict[str, Any]]:
    rows = [
        {
            "engine": tally.label,
            "bytes": tally.source_bytes,
            "load": f"{tally.meta.build_seconds:,.0f} s (built through tally's services)",
            "holds": "events with their indexes, interviews, running totals per hour/day/month",
        }
        for tally in tallies
    ]
    for engine in engines:
        took = loads[engine.name]
        load = " + ".join(f"{seconds:,.1f} s {what}" for what, seconds in took.items())
        rows.append(
            {
                "engine": engine.name,
                "bytes": engine.bytes_on_disk(),
                "load": load,
                "holds": "events",
            }
        )
    rows.append(
        {
            "engine": "Parquet file (the peers' source)",
            "bytes": parquet.stat().st_size,
            "load": f"{export_seconds:,.1f} s exported" if export_seconds else "cached",
            "holds": "events",
        }
    )
    return rows


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    tallies = [obtain_tally(args, backend) for backend in args.backends]
    parquet, export_seconds, events = export(tallies[0], args.work_dir)
    stem = f"peers-{args.size}-{args.seed}"
    engines: list[Engine] = [
        DuckEngine(args.work_dir / f"{stem}.duckdb"),
        ChEngine(args.work_dir / f"{stem}-chdb"),
    ]
    try:
        loads = {}
        for engine in engines:
            loads[engine.name] = engine.load(parquet)
            say(f"   {engine.name} loaded: {loads[engine.name]}")
        storage = _storage(tallies, loads, engines, parquet, export_seconds)
        versions = _versions(engines)
        measures = measure(tallies, engines, args.windows, args.seed)
    finally:
        for engine in engines:
            engine.close()
    source = tallies[0].meta
    return {
        "command": command,
        "size": args.size,
        "seed": args.seed,
        "events": events,
        "windows": args.windows,
        "versions": versions,
        "peers": [engine.name for engine in engines],
        "tallies": [
            {
                "label": tally.label,
                "name": tally.place.name,
                "now": tally.meta.now,
                "checked": _checked(tally, source),
            }
            for tally in tallies
        ],
        "storage": storage,
        "measures": measures,
        "finished_at": datetime.now(tz=UTC).isoformat(),
    }


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(given)
    command = " ".join([".venv/bin/python -m bench.peers", *given])
    try:
        found = run(args, command)
    except Mismatch as exc:
        say(str(exc))
        return 3
    args.results_dir.mkdir(parents=True, exist_ok=True)
    saved = (
        args.results_dir / f"peers-{args.size}-{found['finished_at'][:19].replace(':', '')}.json"
    )
    saved.write_text(json.dumps(found, indent=2) + "\n")
    write_section(args.out, found)
    print("\n".join(render_size(found)))
    say(f"results: {saved}\nreport: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
