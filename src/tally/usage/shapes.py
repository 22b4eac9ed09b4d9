"""The fast path of an event's shape checks (POST /usage/events and the import).

It accepts only the plain spellings a producer writes (a canonical UUID,
`YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)` in years 1900-2099, minutes with at
most six decimals) and returns exactly what the wire schema would make of
them. Anything else, valid or not, goes through the wire schema itself
(tally.usage.ingest), so the normalised value of a valid event and the
reasons given for an invalid one are the same either way.
"""

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast

from tally.core.instants import to_micros
from tally.core.quantities import SCALE, to_scaled

_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_COST_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INSTANT = re.compile(
    r"(?:19|20)\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)", re.ASCII
)
FIELDS = frozenset(
    ("id", "companyId", "costKey", "occurredAt", "minutes", "interviewId", "isTest", "agentFocus")
)
FOCUSES = frozenset(("SCREENING", "OUTREACH", "LANGUAGE_TEST", "GENERIC"))
MAX_MINUTES = 10_000
_CACHE_LIMIT = 100_000


class Shaped(NamedTuple):
    """An event after its shape checks; equal payloads give equal values."""

    id: str
    company_id: uuid.UUID
    cost_key: str
    occurred_at: int
    minutes: int
    interview_id: str | None
    is_test: bool
    agent_focus: str | None


def _plain_id(value: Any) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None and value not in (".", "..")


class ShapeChecker:
    """Checks events one by one, remembering the values it has already seen
    (pure functions of the text: safe to share between threads and callers)."""

    def __init__(self) -> None:
        self._companies: dict[str, uuid.UUID] = {}
        self._cost_keys: set[str] = set()
        self._minutes: dict[Decimal, int] = {}

    def fast(self, raw: dict[str, Any]) -> Shaped | None:
        """The event when every field is in its plain spelling, else None."""
        if not raw.keys() <= FIELDS:
            return None
        ident = raw.get("id")
        interview = raw.get("interviewId")
        is_test = raw.get("isTest", False)
        focus = raw.get("agentFocus")
        if (
            not _plain_id(ident)
            or (interview is not None and not _plain_id(interview))
            or type(is_test) is not bool
            or (focus is not None and (type(focus) is not str or focus not in FOCUSES))
        ):
            return None
        company = self._company(raw.get("companyId"))
        cost_key = raw.get("costKey")
        if company is None or not self._cost_key(cost_key):
            return None
        at = _instant(raw.get("occurredAt"))
        minutes = self._scaled(raw.get("minutes", 0))
        if at is None or minutes is None:
            return None
        # ident and cost_key are strings here (_plain_id, _cost_key).
        return Shaped(
            cast(str, ident), company, cast(str, cost_key), at, minutes, interview, is_test, focus
        )

    def _company(self, value: Any) -> uuid.UUID | None:
        if type(value) is not str:
            return None
        found = self._companies.get(value)
        if found is None and _UUID.fullmatch(value):
            if len(self._companies) > _CACHE_LIMIT:
                self._companies.clear()
            found = self._companies[value] = uuid.UUID(value)
        return found

    def _cost_key(self, value: Any) -> bool:
        if type(value) is not str:
            return False
        if value in self._cost_keys:
            return True
        if _COST_KEY.fullmatch(value) is None:
            return False
        if len(self._cost_keys) > _CACHE_LIMIT:
            self._cost_keys.clear()
        self._cost_keys.add(value)
        return True

    def _scaled(self, value: Any) -> int | None:
        kind = type(value)
        if kind is int:
            return value * SCALE if 0 <= value <= MAX_MINUTES else None
        if kind is not Decimal or not value.is_finite():
            return None
        found = self._minutes.get(value)
        if found is None:
            exponent = value.as_tuple().exponent
            if not (0 <= value <= MAX_MINUTES and isinstance(exponent, int) and exponent >= -6):
                return None
            if len(self._minutes) > _CACHE_LIMIT:
                self._minutes.clear()
            found = self._minutes[value] = to_scaled(value)
        return found


def _instant(value: Any) -> int | None:
    if type(value) is not str or _INSTANT.fullmatch(value) is None:
        return None
    try:
        return to_micros(datetime.fromisoformat(value))
    except ValueError:  # month 13, an offset of 24 hours or more: the exact path says why
        return None
