"""Request parsing shared by routes: JSON bodies with exact numbers, strict queries.

Every body is read by `read_json`, called only from dependencies that run
after the caller is authenticated (see tally.bodies): its Content-Type must be
application/json (415 otherwise), its bytes UTF-8 JSON in which numbers are
exact Decimals and no object repeats a key (400 otherwise).
"""

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema

from tally.errors import UnsupportedMediaType, ValidationFailed


class DuplicateKey(ValueError):
    """An object of a JSON body names the same key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would keep the last of two equal keys; a client sending
    # both means something different from what would be stored.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def parse_json(raw: bytes) -> Any:
    """Decode a UTF-8 JSON body; decimals stay exact, duplicate keys are refused."""
    try:
        # Decoded here: json.loads(bytes) would silently accept UTF-16 and UTF-32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed.field("body", "must be JSON encoded in UTF-8") from exc
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_unique_keys,
        )
    except DuplicateKey as exc:
        raise ValidationFailed.field(exc.key, "appears more than once in an object") from exc
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed.field("body", "not valid JSON") from exc


def check_json_content_type(content_type: str | None) -> None:
    """application/json, optionally with charset=utf-8; anything else is a 415."""
    media_type, *parameters = (content_type or "").split(";")
    if media_type.strip().lower() != "application/json":
        raise UnsupportedMediaType("the body must be sent as Content-Type: application/json")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise UnsupportedMediaType("the body must be JSON encoded in UTF-8")


async def read_json(request: Request) -> Any:
    """The parsed JSON body of a request. Call only once the caller is authenticated."""
    check_json_content_type(request.headers.get("content-type"))
    return parse_json(await request.body())


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed.field(field, "must be a UUID") from exc


def _query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        annotation = param.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            # A query model (`Annotated[Model, Query()]`) stands for its fields.
            fields = annotation.model_fields.items()
            yield from (field.alias or name for name, field in fields)
        else:
            yield param.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def _declared_query(route: APIRoute) -> frozenset[str]:
    # A walk over a handful of dependencies: cheaper than caching it safely.
    return frozenset(_query_names(route.dependant))


def strict_query(request: Request) -> None:
    """Refuse unknown and repeated query parameters (a dependency of every route).

    Ignoring `?company_id=` would silently answer for the caller's whole
    scope; taking the first or last of two values would guess.
    """
    route = request.scope.get("route")
    declared = _declared_query(route) if isinstance(route, APIRoute) else frozenset()
    counts = Counter(name for name, _value in request.query_params.multi_items())
    for name, count in counts.items():
        if name not in declared:
            raise ValidationFailed.field(name, "unknown query parameter")
        if count > 1:
            raise ValidationFailed.field(name, "given more than once")


# Query values are strings parsed by tally (exact instants, UUIDs with a
# field-naming 400); None is their absence, never a value to send.
OptionalQuery = str | SkipJsonSchema[None]


def uuid_query(alias: str, description: str) -> Any:
    """An optional UUID query parameter (documented as one, parsed with parse_uuid)."""
    return Query(alias=alias, description=description, json_schema_extra={"format": "uuid"})


StartQuery = Annotated[
    OptionalQuery, Query(description="inclusive; ISO 8601 (default: end minus 30 days)")
]
EndQuery = Annotated[OptionalQuery, Query(description="exclusive; ISO 8601 (default: now)")]
CompanyIdQuery = Annotated[OptionalQuery, uuid_query("companyId", "narrow to one company")]
