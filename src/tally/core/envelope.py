"""The response envelope every JSON answer uses, rendered with exact decimals."""

from typing import Any

import simplejson
from pydantic import BaseModel
from starlette.responses import JSONResponse

from tally.core.instants import format_instant, utcnow


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python", by_alias=True, exclude_none=False)
    return value


def _default(value: Any) -> Any:
    # Only types that reach here are ones tally's schemas produce.
    if hasattr(value, "isoformat"):
        return format_instant(value)
    if hasattr(value, "hex") and hasattr(value, "int"):  # uuid.UUID
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


class EnvelopeResponse(JSONResponse):
    """JSON with Decimal rendered as a plain number (never through float)."""

    def render(self, content: Any) -> bytes:
        return simplejson.dumps(
            content,
            use_decimal=True,
            default=_default,
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")


def success(data: Any, status_code: int = 200) -> EnvelopeResponse:
    body = {
        "success": True,
        "data": _plain(data),
        "error": None,
        "timestamp": format_instant(utcnow().replace(microsecond=0)),
    }
    return EnvelopeResponse(body, status_code=status_code)


def failure(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> EnvelopeResponse:
    body = {
        "success": False,
        "data": None,
        "error": {"code": code, "message": message, "details": details},
        "timestamp": format_instant(utcnow().replace(microsecond=0)),
    }
    return EnvelopeResponse(body, status_code=status_code, headers=headers)


__all__ = ["EnvelopeResponse", "failure", "success"]
