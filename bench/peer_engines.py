"""DuckDB and chDB (ClickHouse in process) holding tally's events, and their SQL.

Each engine gets the table its users would build, loaded from one Parquet
file through the engine's bulk path:

- chDB: a MergeTree ordered by (company_id, occurred_at), cost_key and
  agent_focus LowCardinality, merged into one part after the insert
  (OPTIMIZE ... FINAL, what background merges reach on a settled table);
- DuckDB: a table filled in time order, so its per-row-group min/max (zone
  maps) prune a time window.

Amounts stay in tally's storage format, integer millionths (exact sums,
cheaper than decimals), and voids are applied before the load: a voided
event carries voided_at. The SQL has SPEC section 2's semantics, as
bench/naive.py does for tally's own tables: counted events (not test, not
voided) with start <= occurred_at < end summed per company and cost key,
and each interview counted in the bucket of its first counted event. That
first event lies before the window's end exactly when the interview counts
at all in the window, so the interview scan stops at `end` (the ordering key
then prunes the rest).
"""

import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import chdb  # type: ignore[import-untyped, unused-ignore]
import duckdb

# company id, bucket start (epoch seconds, or 0 for a single window), cost key ('' for the
# interview rows), events, minutes, credits (millionths), interviews
Row = tuple[str, int, str, int, int, int, int]

USAGE_SQL = """
SELECT company_id, {bucket} AS bucket, cost_key, count(*) AS events,
       sum(minutes) AS minutes, sum(coalesce(credits, 0)) AS credits, 0 AS interviews
FROM {table}
WHERE company_id IN ({ids}) AND occurred_at >= {start} AND occurred_at < {end}
  AND NOT is_test AND voided_at IS NULL
GROUP BY company_id, bucket, cost_key
UNION ALL
SELECT company_id, {first_bucket} AS bucket, '' AS cost_key, 0, 0, 0, count(*)
FROM (
  SELECT company_id, interview_id, min(occurred_at) AS first_at
  FROM {table}
  WHERE company_id IN ({ids}) AND occurred_at < {end} AND interview_id IS NOT NULL
    AND NOT is_test AND voided_at IS NULL
  GROUP BY company_id, interview_id
) AS firsts
WHERE first_at >= {start}
GROUP BY company_id, bucket
"""


class Engine(Protocol):
    name: str

    def load(self, parquet: Path) -> dict[str, float]: ...

    def bytes_on_disk(self) -> int: ...

    def usage(self, companies: Sequence[str], start: datetime, end: datetime) -> list[Row]: ...

    def daily(
        self, companies: Sequence[str], start: datetime, end: datetime, zone: str
    ) -> list[Row]: ...

    def close(self) -> None: ...


def _ids(companies: Sequence[str]) -> str:
    # Our own ids: uuid.UUID rejects anything that could break the literal.
    return ", ".join(f"'{uuid.UUID(company)}'" for company in companies)


def _literal(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _rows(found: Sequence[Sequence[Any]]) -> list[Row]:
    return [
        (str(row[0]), int(row[1]), str(row[2]), *(int(value or 0) for value in row[3:7]))  # type: ignore[misc]
        for row in found
    ]


def _directory_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


class _SqlEngine:
    """The queries both engines share: USAGE_SQL with each engine's table, literals and days."""

    table = "events"

    def _run(self, statement: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _instant(self, moment: datetime) -> str:
        raise NotImplementedError

    def _day(self, column: str, zone: str) -> str:
        raise NotImplementedError

    def _query(
        self,
        bucket: str,
        first_bucket: str,
        companies: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[Row]:
        statement = USAGE_SQL.format(
            table=self.table,
            ids=_ids(companies),
            start=self._instant(start),
            end=self._instant(end),
            bucket=bucket,
            first_bucket=first_bucket,
        )
        return _rows(self._run(statement))

    def usage(self, companies: Sequence[str], start: datetime, end: datetime) -> list[Row]:
        return self._query("0", "0", companies, start, end)

    def daily(
        self, companies: Sequence[str], start: datetime, end: datetime, zone: str
    ) -> list[Row]:
        return self._query(
            self._day("occurred_at", zone), self._day("first_at", zone), companies, start, end
        )


@dataclass
class DuckEngine(_SqlEngine):
    """A DuckDB database file with one table, `events`, in time order."""

    path: Path
    name: str = "DuckDB"

    def __post_init__(self) -> None:
        for stale in (self.path, self.path.with_name(self.path.name + ".wal")):
            stale.unlink(missing_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = duckdb.connect(str(self.path))
        self.connection.execute("SET TimeZone = 'UTC'")

    def load(self, parquet: Path) -> dict[str, float]:
        began = time.perf_counter()
        # The Parquet file is in time order and DuckDB keeps insertion order.
        self.connection.execute(
            "CREATE TABLE events AS SELECT id, CAST(company_id AS UUID) AS company_id, cost_key,"
            " occurred_at, minutes, interview_id, is_test, agent_focus, credits, voided_at"
            " FROM read_parquet(?)",
            [str(parquet)],
        )
        self.connection.execute("CHECKPOINT")
        return {"load": time.perf_counter() - began}

    def bytes_on_disk(self) -> int:
        return _directory_bytes(self.path)

    def _run(self, statement: str) -> list[tuple[Any, ...]]:
        return self.connection.execute(statement).fetchall()

    def _instant(self, moment: datetime) -> str:
        return f"TIMESTAMP '{_literal(moment)}'"

    def _day(self, column: str, zone: str) -> str:
        if zone == "UTC":
            return f"CAST(epoch(date_trunc('day', {column})) AS BIGINT)"
        local = f"timezone('{zone}', CAST({column} AS TIMESTAMPTZ))"
        return f"CAST(epoch(timezone('{zone}', date_trunc('day', {local}))) AS BIGINT)"

    def close(self) -> None:
        self.connection.close()


@dataclass
class ChEngine(_SqlEngine):
    """A chDB session directory with one MergeTree table, `bench.events`."""

    path: Path
    name: str = "chDB"
    table = "bench.events"

    def __post_init__(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        self.connection = chdb.connect(str(self.path))  # type: ignore[no-untyped-call, unused-ignore]
        self.cursor = self.connection.cursor()

    def _run(self, statement: str) -> list[tuple[Any, ...]]:
        self.cursor.execute(statement)
        return list(self.cursor.fetchall())

    def load(self, parquet: Path) -> dict[str, float]:
        self._run("CREATE DATABASE IF NOT EXISTS bench")
        self._run(
            "CREATE TABLE bench.events ("
            " id String, company_id UUID, cost_key LowCardinality(String),"
            " occurred_at DateTime64(6, 'UTC'), minutes Int64, interview_id Nullable(String),"
            " is_test Bool, agent_focus LowCardinality(Nullable(String)),"
            " credits Nullable(Int64), voided_at Nullable(DateTime64(6, 'UTC'))"
            ") ENGINE = MergeTree ORDER BY (company_id, occurred_at)"
        )
        began = time.perf_counter()
        self._run(f"INSERT INTO bench.events SELECT * FROM file('{parquet}', Parquet)")
        loaded = time.perf_counter()
        self._run("OPTIMIZE TABLE bench.events FINAL")
        return {"load": loaded - began, "merge": time.perf_counter() - loaded}

    def server_version(self) -> str:
        return str(self._run("SELECT version()")[0][0])

    def bytes_on_disk(self) -> int:
        found = self._run(
            "SELECT sum(bytes_on_disk) FROM system.parts"
            " WHERE database = 'bench' AND table = 'events' AND active"
        )
        return int(found[0][0])

    def _instant(self, moment: datetime) -> str:
        return f"toDateTime64('{_literal(moment)}', 6, 'UTC')"

    def _day(self, column: str, zone: str) -> str:
        return f"toUnixTimestamp(toStartOfDay({column}, '{zone}'))"

    def close(self) -> None:
        self.cursor.close()
        self.connection.close()
