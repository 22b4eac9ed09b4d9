"""Bulk writes straight through the DB-API driver, for the ingestion hot path.

SQLAlchemy's per-row parameter processing costs more than SQLite's own
insert; for the two statements run for every event (the event row and its
bucket upserts) tally hands plain tuples to the driver's executemany. The
values must then be in the storage format the column types would produce:
that conversion lives here, next to the placeholders of each dialect.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg.types.string import TextLoader
from sqlalchemy.orm import Session


class Driver:
    """Placeholders and value conversion for one dialect."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def uuid_text(self, value: uuid.UUID) -> str:
        """A UUID column as fetchall(..., uuid_text=True) returns it."""
        return value.hex if self.sqlite else str(value)

    def uuid(self, value: uuid.UUID | None) -> Any:
        # SQLAlchemy's Uuid stores 32 hex digits on SQLite, native uuid on PostgreSQL.
        if value is None or not self.sqlite:
            return value
        return value.hex

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else value

    def insert(self, table: str, columns: Sequence[str], suffix: str = "") -> str:
        """An INSERT of one row of placeholders; names are tally's own constants."""
        marks = ", ".join([self.mark] * len(columns))
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}"  # noqa: S608

    def fetchall(
        self, statement: str, params: Sequence[Any], uuid_text: bool = False
    ) -> list[tuple[Any, ...]]:
        """Rows as plain tuples from the driver's own cursor (no result processing).

        With uuid_text, UUID columns come back as text (uuid_text()): a report
        reads tens of thousands of rows, and psycopg builds a uuid.UUID (in
        Python) for each, which the report then hashes and compares in Python.
        """
        cursor = self.session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if uuid_text and not self.sqlite:
            cursor.adapters.register_loader("uuid", TextLoader)
        try:
            cursor.execute(statement, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def empty_temp_table(self, name: str, *, columns: str = "", query: str = "") -> None:
        """A temporary table of this connection, created when missing (from
        `columns`, "(a BIGINT, ...)", or `query`, "AS SELECT ..."), then
        emptied. On PostgreSQL its rows also go at every commit."""
        on_commit = "" if self.sqlite else " ON COMMIT DELETE ROWS"
        connection = self.session.connection()
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {name}{columns}{on_commit} {query}"
        )
        connection.exec_driver_sql(f"DELETE FROM {name}")  # noqa: S608 - tally's own name

    def executemany(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run an INSERT once per row (the driver batches them: SQLite in C,
        psycopg in pipeline mode).

        On PostgreSQL every other statement is planned for its own values
        (tally.db.engine); an INSERT of values has one plan whatever they are,
        so here PostgreSQL may reuse it (its default plan cache: a generic plan
        after five executions) instead of planning each row again, which made
        a batch's inserts three times slower. SET LOCAL ends with the
        transaction, also when the INSERT fails.
        """
        if not rows:
            return
        connection = self.session.connection()
        many = not self.sqlite and len(rows) > _PLANNED_EACH
        if many:
            connection.exec_driver_sql("SET LOCAL plan_cache_mode = auto")
        connection.exec_driver_sql(statement, list(rows))
        if many:
            connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


# Below this many rows a generic plan would not be chosen anyway.
_PLANNED_EACH = 5
