"""The response envelope every JSON answer uses, rendered with exact decimals.

`Envelope[T]` and `ErrorEnvelope` are both the OpenAPI description of every
answer and the models the answers are built from, so the two cannot drift.
Numbers are `Decimal` end to end: dumped in Python mode (Decimal stays
Decimal) and written by simplejson as the plain JSON number they are.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

import simplejson
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import JSONResponse

from tally.core.instants import format_instant, utcnow

T = TypeVar("T")

# pydantic describes Decimal as a string (its own JSON mode writes strings);
# tally writes plain JSON numbers, so the schema says number.
Number = Annotated[Decimal, WithJsonSchema({"type": "number"})]
Timestamp = Annotated[
    str,
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-01-31T10:30:00Z"}),
]


def absent(default: None = None, **kwargs: Any) -> Any:
    """A field left out of the JSON when None ("absent means absent", never null)."""
    return Field(default=default, exclude_if=lambda value: value is None, **kwargs)


# An optional number that is absent rather than null: the schema shows only
# `number`, and the field is not required.
OptionalNumber = Number | SkipJsonSchema[None]


class Envelope(BaseModel, Generic[T]):
    """A successful answer: the data of the route under `data`."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    success: Literal[True] = True
    data: T
    error: None = None
    timestamp: Timestamp


class ErrorBody(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", examples=["VALIDATION_ERROR"])
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    """A failed answer: `error` says what went wrong, `data` is null."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    success: Literal[False] = False
    data: None = None
    error: ErrorBody
    timestamp: Timestamp


def _now() -> str:
    return format_instant(utcnow().replace(microsecond=0))


def _default(value: Any) -> Any:
    # Only types that reach here are ones tally's schemas produce.
    if isinstance(value, datetime):
        return format_instant(value)
    if hasattr(value, "hex") and hasattr(value, "int"):  # uuid.UUID
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


class EnvelopeResponse(JSONResponse):
    """JSON with Decimal rendered as a plain number (never through float)."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            content = content.model_dump(mode="python", by_alias=True)
        return simplejson.dumps(
            content,
            use_decimal=True,
            default=_default,
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")


def success(data: Any, status_code: int = 200) -> EnvelopeResponse:
    """The envelope around `data` (a response model, or a dict already in wire form)."""
    return EnvelopeResponse(Envelope[Any](data=data, timestamp=_now()), status_code=status_code)


def failure(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> EnvelopeResponse:
    error = ErrorBody.model_construct(code=code, message=message, details=details)
    body = ErrorEnvelope.model_construct(error=error, timestamp=_now())
    return EnvelopeResponse(body, status_code=status_code, headers=headers)


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "VALIDATION_ERROR (a malformed, unknown or repeated field or parameter), "
        "or INVALID_DATE_RANGE",
        {},
    ),
    401: ("INVALID_API_KEY: no key, or an unknown, revoked or expired one", {}),
    403: ("INSUFFICIENT_SCOPE or COMPANY_NOT_ACCESSIBLE", {}),
    404: ("NOT_FOUND", {}),
    409: ("CONFLICT or EVENT_CONFLICT", {}),
    413: ("PAYLOAD_TOO_LARGE: the body is over the limit", {}),
    415: ("UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json (UTF-8)", {}),
    422: ("INVALID_EVENTS or NO_CREDIT_PRICING; nothing was stored", {}),
    429: ("RATE_LIMITED: over the key's rate limit", _RETRY_AFTER),
    500: ("INTERNAL_ERROR", {}),
    503: (
        "SERVICE_UNAVAILABLE: overloaded, or the database cannot be reached in time; "
        "nothing was done",
        _RETRY_AFTER,
    ),
}
# What every route can answer: a malformed query (400) and a failure (500, 503).
ANY_ROUTE = (400, 500, 503)
# What every route behind a key can answer besides: 401, 403 (scope) and 429.
AUTHENTICATED = (*ANY_ROUTE, 401, 403, 429)
# What a route that takes a body can answer besides.
WITH_BODY = (413, 415)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, each with the error envelope."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        description, headers = _ERRORS[status]
        responses[status] = {"model": ErrorEnvelope, "description": description}
        if headers:
            responses[status]["headers"] = headers
    return responses


__all__ = [
    "ANY_ROUTE",
    "AUTHENTICATED",
    "WITH_BODY",
    "Envelope",
    "EnvelopeResponse",
    "ErrorEnvelope",
    "Number",
    "OptionalNumber",
    "Timestamp",
    "absent",
    "error_responses",
    "failure",
    "success",
]
