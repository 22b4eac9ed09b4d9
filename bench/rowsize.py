"""Bytes per row of tally's tables and indexes on a cached PostgreSQL benchmark database.

    .venv/bin/python -m bench.rowsize --size 200000 --tag scaleout

Builds the database if it is not cached (bench/load.py), runs VACUUM ANALYZE
on it so the row counts are exact and the free space map is current, and
prints, per table with rows, pg_relation_size of the heap (TOAST included)
and of each index, divided by the table's rows: what a row costs on disk and
in shared buffers (docs/scaling.md, "What breaks first").
"""

import argparse

import psycopg
from psycopg import sql

from bench.backends import _pg_conninfo
from bench.config import PG_ADMIN_URL, parse
from bench.load import obtain

TABLES = (
    "usage_events",
    "interviews",
    "usage_buckets",
    "usage_pairs",
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
_TOAST = "SELECT coalesce(pg_relation_size(reltoastrelid), 0) FROM pg_class WHERE relname = %s"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rowsize")
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag", default="scaleout")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    config = parse(
        [
            *("--sizes", str(args.size), "--backends", "postgresql", "--seed", str(args.seed)),
            *("--tag", args.tag, "--pg-admin-url", args.pg_admin_url),
        ]
    )
    place, _, _ = obtain(config, args.size, "postgresql")
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


if __name__ == "__main__":
    main()
