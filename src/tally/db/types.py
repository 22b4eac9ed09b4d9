"""Column types that behave identically on SQLite and PostgreSQL."""

from datetime import datetime

from sqlalchemy import BigInteger, Dialect
from sqlalchemy.types import TypeDecorator

from tally.core.instants import from_micros, to_micros


class UtcMicros(TypeDecorator[datetime]):
    """An aware UTC datetime stored as BIGINT microseconds since the epoch.

    Integers of microseconds are accepted on bind too.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | int | None, dialect: Dialect) -> int | None:
        # Hot paths (ingestion, buckets) already hold epoch microseconds.
        if value is None or isinstance(value, int):
            return value
        return to_micros(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(value)
