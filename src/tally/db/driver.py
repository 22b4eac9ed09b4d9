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

    def executemany(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            self.session.connection().exec_driver_sql(statement, list(rows))
