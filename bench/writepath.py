"""The write path: shifting running totals inline vs appending to a tail folded later.

    .venv/bin/python -m bench.writepath --size 20000 --events 20000 --seed 7

For each backend a fresh scratch copy of the cached benchmark database is
served by a real `tally serve` (one process) in each mode, one after the
other, and one client POSTs fresh events in batches of 1,000:

- inline: TALLY_USAGE_FOLD_INLINE=1, every batch shifts the running totals
  in its own transaction (the behaviour before usage_deltas);
- tail: the default, every batch appends its hourly sums to usage_deltas and
  the server's background folder moves them into the totals meanwhile;
- tail, no folder: TALLY_USAGE_FOLDER=0, appends only (what a batch costs
  when no fold competes with it); the tail left is then folded in-process in
  one `fold_all` (fold throughput), and a report is timed with that tail and
  again once it is folded (read latency, in-process, median of the windows).

With --in-process there is no server: each batch is decoded, then stored in
its own write transaction (`ingest.store` in `Database.write`, what a request
does under the write lock), inline and tail, and the tail is folded at the
end (`fold_all`); per batch: decoding, the write transaction, the fold.

Two traffic orders: `time` (the last week, in time order with a few late
events) and `random` (thirteen months, shuffled). Prints a Markdown table
(docs/performance.md, "The write path: deltas and folding").
"""

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench import backends, ingest, queries, server
from bench.config import parse
from bench.dataset import HISTORY_DAYS, EventStream, build_world
from bench.load import Meta, obtain
from bench.measure import say
from tally.core.http import parse_json
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.settings import get_settings
from tally.usage import fold
from tally.usage import ingest as ingest_module
from tally.usage.models import UsageDelta

ORDERS = ("time", "random")
MODES = ("inline", "tail", "tail, no folder")
ENV = {
    "inline": {"TALLY_USAGE_FOLD_INLINE": "1", "TALLY_USAGE_FOLDER": "1"},
    "tail": {"TALLY_USAGE_FOLD_INLINE": "0", "TALLY_USAGE_FOLDER": "1"},
    "tail, no folder": {"TALLY_USAGE_FOLD_INLINE": "0", "TALLY_USAGE_FOLDER": "0"},
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.writepath")
    parser.add_argument("--size", type=int, default=20_000, help="events in the history")
    parser.add_argument("--events", type=int, default=20_000, help="fresh events per run")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--orders", nargs="+", choices=ORDERS, default=list(ORDERS))
    parser.add_argument("--windows", type=int, default=20, help="report windows timed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="time the write transaction per batch in-process instead (no server)",
    )
    return parser.parse_args(argv)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def events_in_order(meta: Meta, seed: int, count: int, prefix: str, order: str) -> list[Any]:
    if order == "time":
        return ingest.fresh_events(meta, seed, count, prefix)
    world = build_world(meta.seed, meta.anchor)
    stream = EventStream(seed, world, count, meta.anchor, prefix=prefix, days=HISTORY_DAYS - 2)
    events = list(stream)
    random.Random(seed).shuffle(events)
    return events


def _tail(database: Database) -> int:
    with database.transaction(write=False) as session:
        return int(session.execute(select(func.count()).select_from(UsageDelta)).scalar_one())


def _report_ms(database: Database, meta: Meta, count: int, seed: int) -> dict[str, float]:
    """Median in-process ms of Q1 (one company, 30 days) and Q4 (500 companies, 365 days)."""
    found = {}
    for query in (queries.QUERIES[0], queries.QUERIES[3]):
        caller = queries.principal(meta, query)
        items = queries.windows(meta, query, count, seed)
        found[query.name] = statistics.median(queries.in_process(database, caller, items)) * 1e3
    return found


def _run(backend: str, mode: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    config = parse(["--sizes", str(args.size), "--backends", backend, "--seed", str(args.seed)])
    place, meta, _ = obtain(config, args.size, backend)
    work = backends.scratch_copy(place)
    rows = []
    try:
        database = Database(work.url)
        try:
            key = server.create_keys(database, meta).platform
            with _environment(ENV[mode]), server.running(work.url, 1) as running:
                for order in args.orders:
                    prefix = f"w{MODES.index(mode)}-{order}-"
                    events = events_in_order(meta, args.seed + 5, args.events, prefix, order)
                    run = ingest.http_ingest(
                        running.port, key, ingest.encode_batches(events), clients=1
                    )
                    run |= {"backend": backend, "mode": mode, "order": order}
                    run["tail_after"] = _tail(database)
                    if mode == "tail, no folder":
                        run |= _fold_and_read(database, meta, args)
                    say(
                        f"   {backend} {mode} {order}: {run['events_per_s']:,.0f} events/s,"
                        f" tail {run['tail_after']:,}"
                    )
                    rows.append(run)
        finally:
            database.dispose()
    finally:
        backends.drop(work)
    return rows


def _fold_and_read(database: Database, meta: Meta, args: argparse.Namespace) -> dict[str, Any]:
    """Reports with the tail, the tail folded in one go, reports again."""
    tail = _tail(database)
    with_tail = _report_ms(database, meta, args.windows, args.seed)
    began = time.perf_counter()
    moved = database.write(fold.fold_all)
    seconds = time.perf_counter() - began
    without = _report_ms(database, meta, args.windows, args.seed)
    return {
        "fold_rows": moved,
        "fold_seconds": seconds,
        "fold_rows_per_s": moved / seconds if seconds else 0.0,
        "read_with_tail_ms": with_tail,
        "read_folded_ms": without,
        "tail_read": tail,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | order | mode | events/s | vs inline | p50 ms/batch | tail left |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    inline = {
        (row["backend"], row["order"]): row["events_per_s"]
        for row in rows
        if row["mode"] == "inline"
    }
    for row in rows:
        base = inline.get((row["backend"], row["order"])) or row["events_per_s"]
        lines.append(
            f"| {row['backend']} | {row['order']} | {row['mode']} | {row['events_per_s']:,.0f}"
            f" | {row['events_per_s'] / base:.2f} | {row['latency_ms'].get('p50', 0):,.0f}"
            f" | {row['tail_after']:,} |"
        )
    lines += [
        "",
        "| backend | order | tail rows folded | fold s | rows/s | Q1 ms with tail | Q1 ms folded"
        " | Q4 ms with tail | Q4 ms folded |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "fold_rows" not in row:
            continue
        tail, folded = row["read_with_tail_ms"], row["read_folded_ms"]
        lines.append(
            f"| {row['backend']} | {row['order']} | {row['fold_rows']:,}"
            f" | {row['fold_seconds']:.2f} | {row['fold_rows_per_s']:,.0f}"
            f" | {tail['Q1']:.1f} | {folded['Q1']:.1f} | {tail['Q4']:.1f} | {folded['Q4']:.1f} |"
        )
    return "\n".join(lines)


def _store(session: Session, parsed: Any) -> Any:
    return ingest_module.store(session, parsed, utcnow())


def _store_all(database: Database, bodies: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds decoding (no lock) and seconds in the write transaction, summed over batches.

    Decoding starts from the body's bytes, as a request's does (the JSON with
    exact decimals, then the shape checks).
    """
    decoding = writing = 0.0
    for body in bodies:
        raw = json.dumps(body).encode()
        began = time.perf_counter()
        parsed = ingest_module.parse(parse_json(raw))
        middle = time.perf_counter()
        database.write(partial(_store, parsed=parsed))
        decoding += middle - began
        writing += time.perf_counter() - middle
    return decoding, writing


def _in_process(backend: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The write transaction alone, batch after batch, inline vs tail (+ its fold)."""
    config = parse(["--sizes", str(args.size), "--backends", backend, "--seed", str(args.seed)])
    place, meta, _ = obtain(config, args.size, backend)
    rows = []
    for mode in ("inline", "tail"):
        work = backends.scratch_copy(place)
        try:
            with _environment(ENV[mode]):
                get_settings.cache_clear()
                database = Database(work.url)
                try:
                    for order in args.orders:
                        prefix = f"p{mode[0]}-{order}-"
                        events = events_in_order(meta, args.seed + 9, args.events, prefix, order)
                        bodies = [
                            {"events": events[at : at + ingest.BATCH]}
                            for at in range(0, len(events), ingest.BATCH)
                        ]
                        decoding, writing = _store_all(database, bodies)
                        began = time.perf_counter()
                        moved = database.write(fold.fold_all)
                        folding = time.perf_counter() - began
                        row = {
                            "backend": backend,
                            "mode": mode,
                            "order": order,
                            "batches": len(bodies),
                            "decode_ms": decoding / len(bodies) * 1e3,
                            "write_ms": writing / len(bodies) * 1e3,
                            "fold_ms": folding / len(bodies) * 1e3,
                            "fold_rows": moved,
                        }
                        say(
                            f"   {backend} {mode} {order}: write {row['write_ms']:.0f} ms/batch,"
                            f" fold {row['fold_ms']:.0f} ms/batch"
                        )
                        rows.append(row)
                finally:
                    database.dispose()
        finally:
            get_settings.cache_clear()
            backends.drop(work)
    return rows


def in_process_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | order | mode | decode ms/batch | write txn ms/batch | fold ms/batch"
        " | tail rows folded | write+fold vs inline |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    inline = {(r["backend"], r["order"]): r["write_ms"] for r in rows if r["mode"] == "inline"}
    for row in rows:
        total = row["write_ms"] + (row["fold_ms"] if row["mode"] == "tail" else 0.0)
        base = inline.get((row["backend"], row["order"])) or total
        lines.append(
            f"| {row['backend']} | {row['order']} | {row['mode']} | {row['decode_ms']:.0f}"
            f" | {row['write_ms']:.0f} | {row['fold_ms']:.0f} | {row['fold_rows']:,}"
            f" | {total / base:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    if args.in_process:
        found: list[dict[str, Any]] = []
        for backend in args.backends:
            found += _in_process(backend, args)
        print(in_process_table(found))
        return
    rows: list[dict[str, Any]] = []
    for backend in args.backends:
        for mode in MODES:
            rows += _run(backend, mode, args)
    print(table(rows))
    for row in rows:
        if row["errors"]:
            say(f"errors ({row['backend']} {row['mode']}): {row['errors']}")


if __name__ == "__main__":
    main()
