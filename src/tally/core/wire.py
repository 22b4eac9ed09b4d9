"""Field types of request bodies: exact amounts, instants and UUIDs, strictly typed.

Bodies are decoded with exact Decimals (tally.core.http), then validated by
pydantic models built from these types. Each type accepts exactly what its
JSON schema says (a number is never a string, an instant never a number), so
the OpenAPI document is as strict as the server.
"""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from tally.core.instants import InstantError, parse_instant, to_utc
from tally.core.quantities import QuantityError, to_decimal, to_scaled

AMOUNT_LIMIT = 1_000_000_000


def exact_number(value: Any) -> Decimal:
    """A JSON number as an exact Decimal of at most six places; ValueError (a 400) otherwise."""
    try:
        number = to_decimal(value)
        to_scaled(number)  # exact, at most six decimal places, not absurdly large
    except QuantityError as exc:
        raise ValueError(str(exc)) from exc
    return number


def _amount(value: Any) -> Decimal:
    number = exact_number(value)
    if number < 0:
        raise ValueError("must be at least 0")
    if number >= AMOUNT_LIMIT:
        raise ValueError(f"must be less than {AMOUNT_LIMIT}")
    return number


# A money-like amount (credits, minutes of a price): 0 <= x < 10**9, at most
# six decimal places, parsed exactly (2.00000000000000001 is refused, not 2).
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "type": "number",
            "minimum": 0,
            "exclusiveMaximum": AMOUNT_LIMIT,
            "description": "exact, at most 6 decimal places",
        }
    ),
]


def _instant(value: Any) -> datetime:
    # A datetime comes only from Python callers (the command line), never from JSON.
    if isinstance(value, datetime):
        value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    elif not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    try:
        # Out of the years 1-9999 once in UTC (9999-12-31T23:59:59-23:59): a 400.
        return to_utc(
            value if isinstance(value, datetime) else parse_instant(value, require_offset=False)
        )
    except InstantError as exc:
        raise ValueError(str(exc)) from exc


# An ISO 8601 instant; without an offset it is UTC, a date alone is midnight UTC.
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 64,
            "description": "ISO 8601 date-time (UTC when it has no offset)",
            "example": "2026-01-01T00:00:00Z",
        }
    ),
]


def _uuid_string(value: Any) -> Any:
    # A UUID comes only from Python callers (the command line), never from JSON.
    if not isinstance(value, str | uuid.UUID):
        raise ValueError("must be a UUID string")
    return value


UuidString = Annotated[
    uuid.UUID,
    BeforeValidator(_uuid_string),
    WithJsonSchema({"type": "string", "format": "uuid"}),
]
