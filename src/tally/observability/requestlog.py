"""Request ids and the structured (JSON lines) log: one line per request, one per 500.

What a line may hold is decided here, in one place: the method, the route
template (never the query string, which could carry anything), the status,
the duration, the request id, the client address and at most a key's lookup
id (`sk_live_` and 8 characters, shown in key lists anyway). Never a key, an
Authorization header, an exception message (SQLAlchemy puts statements and
parameters there) or a traceback.
"""

import json
import logging
import re
import traceback
import uuid
from types import TracebackType
from typing import Any

from tally.auth.keys import is_well_formed, lookup_id
from tally.core.instants import format_instant, utcnow

REQUEST_ID_HEADER = "X-Request-ID"
# Accepted from the caller as is: bounded and free of anything that could
# break a log line or a header (no spaces, quotes, control characters).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_log = logging.getLogger("tally.request")
error_log = logging.getLogger("tally.error")


def request_id_from(header: bytes | None) -> str:
    """The caller's X-Request-ID when well formed, else a new random one."""
    if header is not None:
        value = header.decode("latin-1")
        if REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def key_prefix(authorization: bytes | None) -> str | None:
    """The lookup id of a well-formed bearer key; nothing from any other header."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.decode("latin-1").partition(" ")
    key = credentials.strip()
    if scheme.lower() != "bearer" or not is_well_formed(key):
        return None
    return lookup_id(key)


def log_request(fields: dict[str, Any]) -> None:
    request_log.info("request", extra={"fields": fields})


def error_place(tb: TracebackType | None) -> str:
    """file:line of the innermost frame: where it failed, without the message."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename}:{last.lineno}"


def log_internal_error(exc: BaseException, fields: dict[str, Any]) -> None:
    """One line for a 500: the exception's type and place, never its message."""
    details = fields | {"error": type(exc).__name__, "where": error_place(exc.__traceback__)}
    error_log.error("internal error", extra={"fields": details})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's fields.

    Tracebacks are never written: a record that carries one (a library's)
    gets the exception's type only.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": format_instant(utcnow()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage().splitlines()[0] if record.msg else "",
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=True, default=str)
