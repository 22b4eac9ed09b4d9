"""Bytes per row of tally's tables and indexes on a cached PostgreSQL benchmark database.

    .venv/bin/python -m bench.rowsize --size 200000 --tag scaleout --wal-events 20000

Builds the database if it is not cached (bench/load.py), runs VACUUM ANALYZE
on it so the row counts are exact and the free space map is current, and
prints, per table with rows, pg_relation_size of the heap (TOAST included)
and of each index, divided by the table's rows: what a row costs on disk and
in shared buffers (docs/scaling.md, "What breaks first").

With --wal-events N it then measures the write-ahead log ingestion writes:
on a scratch copy, N fresh events are ingested in batches of 1,000 through
tally.usage.ingest (the code path of POST /usage/events, one transaction per
batch), once as the dataset's mixed stream and once grouped by company, and
pg_walinspect sums the WAL records that touch that database's files between
the LSNs before and after (a temporary replication slot keeps that WAL until
it is read) (other databases of the cluster excluded; commit
records, a few dozen bytes each, are not attributed to a database and left
out). Full-page images (the first change of a page after a checkpoint) are
shown apart: how many there are depends on the checkpoint interval.
"""

import argparse
import os
import time
from typing import Any

import psycopg
from psycopg import sql

from bench import backends, ingest
from bench.backends import Place, _pg_conninfo
from bench.config import PG_ADMIN_URL, parse
from bench.load import BATCH, Meta, obtain
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.usage import ingest as usage_ingest

TABLES = (
    "usage_events",
    "interviews",
    "usage_buckets",
    "usage_pairs",
    "usage_unit_buckets",
    "companies",
    "pricing_rules",
    "api_keys",
)
_SIZES = """
SELECT c.relname, pg_relation_size(c.oid), i.indexrelid::regclass::text,
       pg_relation_size(i.indexrelid), pg_get_indexdef(i.indexrelid)
FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid
WHERE c.relname = %s AND c.relkind = 'r'
ORDER BY 3
"""
_WAL = """
SELECT count(*), coalesce(sum(record_length), 0), coalesce(sum(fpi_length), 0),
       count(*) FILTER (WHERE fpi_length > 0)
FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn)
WHERE block_ref LIKE %s
"""
_TOAST = "SELECT coalesce(pg_relation_size(reltoastrelid), 0) FROM pg_class WHERE relname = %s"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rowsize")
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag", default="scaleout")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--wal-events", type=int, default=0, help="events for the WAL measure")
    return parser.parse_args(argv)


def _lsn(connection: psycopg.Connection[Any]) -> str:
    row = connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def _wal_of(place: Place, meta: Meta, events: int, seed: int) -> None:
    work = backends.scratch_copy(place)
    database = Database(work.url)
    try:
        with psycopg.connect(_pg_conninfo(work.url), autocommit=True) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            # Keeps the WAL from here on until this connection closes (a busy
            # cluster could otherwise recycle it before it is read).
            slot = f"tally_bench_wal_{os.getpid()}"
            connection.execute(
                "SELECT pg_create_physical_replication_slot(%s, true, true)", (slot,)
            )
            oid = connection.execute(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).fetchone()
            assert oid is not None
            print(f"\nWAL of ingestion ({events:,} events per shape, batches of {BATCH:,})\n")
            print(
                "| traffic | batches | WAL records | bytes/event, all | without full-page images"
                " | full-page images: bytes/event | records with one"
                " | ms per batch: parse | transaction (parse excluded) |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for shape in ("mixed", "grouped"):
                rows = ingest.fresh_events(meta, seed + 7000, events, f"w-{shape}-")
                if shape == "grouped":
                    rows.sort(key=lambda item: (item["companyId"], item["occurredAt"]))
                before = _lsn(connection)
                batches, parsing, writing = 0, 0.0, 0.0
                for offset in range(0, len(rows), BATCH):
                    body = {"events": rows[offset : offset + BATCH]}
                    began = time.perf_counter()
                    batch = usage_ingest.parse(body)  # as the server does, before its lock
                    parsed = time.perf_counter()
                    with database.transaction(write=True) as session:
                        usage_ingest.store(session, batch, utcnow())
                    parsing += parsed - began
                    writing += time.perf_counter() - parsed
                    batches += 1
                after = _lsn(connection)
                found = connection.execute(_WAL, (before, after, f"% rel %/{oid[0]}/%")).fetchone()
                assert found is not None
                records, size, fpi, with_fpi = (int(value) for value in found)
                count = len(rows)
                print(
                    f"| {shape} | {batches} | {records:,} | {size / count:,.0f}"
                    f" | {(size - fpi) / count:,.0f} | {fpi / count:,.0f} | {with_fpi:,}"
                    f" | {parsing / batches * 1000:,.0f} | {writing / batches * 1000:,.0f} |"
                )
    finally:
        database.dispose()
        backends.drop(work)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    config = parse(
        [
            *("--sizes", str(args.size), "--backends", "postgresql", "--seed", str(args.seed)),
            *("--tag", args.tag, "--pg-admin-url", args.pg_admin_url),
        ]
    )
    place, meta, _ = obtain(config, args.size, "postgresql")
    print(f"database {place.name}\n")
    print("| table | rows | heap bytes/row | index | index bytes/row |")
    print("|---|---:|---:|---|---:|")
    with psycopg.connect(_pg_conninfo(place.url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        for table in TABLES:
            count = connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            rows = int(count[0]) if count else 0
            if rows == 0:
                continue
            toast = connection.execute(_TOAST, (table,)).fetchone()
            sizes = connection.execute(_SIZES, (table,)).fetchall()
            heap = int(sizes[0][1]) + (int(toast[0]) if toast else 0)
            total = heap
            print(f"| {table} | {rows:,} | {heap / rows:,.0f} | | |")
            for _, _, index, index_bytes, definition in sizes:
                if index is None:
                    continue
                total += int(index_bytes)
                columns = definition[definition.index("(") :]
                print(f"| | | | `{index}` {columns} | {int(index_bytes) / rows:,.0f} |")
            print(f"| | | | **table + indexes** | **{total / rows:,.0f}** |")
    if args.wal_events:
        _wal_of(place, meta, args.wal_events, args.seed)


if __name__ == "__main__":
    main()
