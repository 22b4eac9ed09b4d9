"""Request parsing shared by routes: JSON bodies with exact numbers, query values."""

import json
import uuid
from decimal import Decimal
from typing import Any

from fastapi import Request

from tally.errors import ValidationFailed


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    """Decode a body; decimals stay exact (Decimal, never float)."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValidationFailed(
            "the request body is not valid JSON", details={"field": "body"}
        ) from exc


async def json_body(request: Request) -> Any:
    """The parsed JSON body of a request (a dependency)."""
    return parse_json(await request.body())


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed.field(field, "must be a UUID") from exc
