"""Copy a cached SQLite benchmark database into PostgreSQL, table by table.

Building a 10 M-event history through tally's services takes about an hour
on a loaded 2-core machine for each backend. The PostgreSQL history of the
same seed and size holds the very same rows (same ids, same prices, same
aggregates), so once the SQLite one is built this copies every table with
`COPY` instead, and writes the meta file that `bench.load.obtain` reuses.
`tally verify` on the copy must find nothing to repair (checked at the end).

    python -m bench.pgcopy --size 10000000 [--seed 7] [--tag series]
"""

import argparse
import json
import subprocess
import time
from dataclasses import asdict, replace

import psycopg
from psycopg import sql

from bench import backends
from bench.config import parse
from bench.load import _load_meta, schema_head
from bench.measure import say
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.db.migrate import upgrade
from tally.db.models import Base
from tally.usage import verify


def copy_tables(source_path: str, target_url: str) -> dict[str, int]:
    """Each table through `sqlite3 -csv | psql \\copy` (PostgreSQL reads SQLite's
    32-digit UUIDs and 0/1 booleans as they are); returns the rows copied."""
    conninfo = target_url.replace("postgresql+psycopg://", "postgresql://")
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        began = time.perf_counter()
        names = ", ".join(f'"{column.name}"' for column in table.columns)
        query = f'SELECT {names} FROM "{table.name}"'
        load = f'\\copy "{table.name}" ({names}) FROM STDIN WITH (FORMAT csv)'
        dump = subprocess.Popen(
            ["sqlite3", "-readonly", "-csv", source_path, query], stdout=subprocess.PIPE
        )
        subprocess.run(
            ["psql", conninfo, "-q", "-v", "ON_ERROR_STOP=1", "-c", load],
            stdin=dump.stdout,
            check=True,
        )
        if dump.wait() != 0:
            raise SystemExit(f"sqlite3 failed on {table.name}")
        with psycopg.connect(conninfo) as target:
            row = target.execute(
                sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(table.name))
            ).fetchone()
        counts[table.name] = int(row[0]) if row else 0
        say(f"   {table.name}: {counts[table.name]:,} rows in {time.perf_counter() - began:,.1f}s")
    # What autovacuum would reach on a settled database (statistics, and the
    # visibility map), done now so that it does not run during a measurement.
    with psycopg.connect(conninfo, autocommit=True) as target:
        target.execute("VACUUM (ANALYZE)")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pgcopy")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag", default="series", help="suffix of the PostgreSQL database name")
    args = parser.parse_args(argv)
    config = parse(["--sizes", str(args.size), "--seed", str(args.seed), "--tag", args.tag])
    source = backends.cached(config, "sqlite", args.size)
    meta = _load_meta(backends.meta_path(config, source))
    if meta is None or not backends.exists(source):
        raise SystemExit(f"no complete SQLite history at {source.name}; build it first")
    target = backends.cached(config, "postgresql", args.size)
    began = time.perf_counter()
    backends.drop(target)
    backends.create(target)
    upgrade(target.url)
    counts = copy_tables(source.name, target.url)
    database = Database(target.url)
    try:
        remaining = verify.run(database, fix=False)
    finally:
        database.dispose()
    if remaining:
        raise SystemExit(f"the copy differs from its raw events: {remaining[:3]}")
    copied = replace(
        meta,
        backend="postgresql",
        events=counts["usage_events"],
        schema=schema_head(target.url),
        build_seconds=round(time.perf_counter() - began, 1),
        built_at=utcnow().isoformat(),
    )
    path = backends.meta_path(config, target)
    path.write_text(json.dumps(asdict(copied), indent=2) + "\n")
    say(f"   {target.name}: copied in {copied.build_seconds:,.0f}s, verify clean")


if __name__ == "__main__":
    main()
