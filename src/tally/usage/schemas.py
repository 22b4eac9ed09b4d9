"""Wire formats of usage events (the report's are in tally.reporting.schemas)."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints

from tally.core.instants import InstantError, parse_instant
from tally.core.quantities import QuantityError, to_decimal, to_scaled
from tally.reporting.schemas import CompanyUsage, CostKeyUsage, Period, UsageReport

AgentFocus = Literal["SCREENING", "OUTREACH", "LANGUAGE_TEST", "GENERIC"]
IdString = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
CostKey = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_]{0,63}$")]


def _event_instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with an offset")
    try:
        return parse_instant(value, require_offset=True)
    except InstantError as exc:
        raise ValueError(str(exc)) from exc


def _quantity(value: Any) -> Decimal:
    try:
        number = to_decimal(value)
        to_scaled(number)  # at most six decimal places
    except QuantityError as exc:
        raise ValueError(str(exc)) from exc
    return number


def _uuid(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a UUID string")
    return value


EventInstant = Annotated[datetime, BeforeValidator(_event_instant)]
Minutes = Annotated[Decimal, BeforeValidator(_quantity), Field(ge=0, le=10000, decimal_places=6)]
UuidString = Annotated[uuid.UUID, BeforeValidator(_uuid)]


class EventIn(BaseModel):
    """One usage event as the interview engine sends it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    id: IdString
    company_id: UuidString = Field(alias="companyId")
    cost_key: CostKey = Field(alias="costKey")
    occurred_at: EventInstant = Field(alias="occurredAt")
    minutes: Minutes = Decimal(0)
    interview_id: IdString | None = Field(default=None, alias="interviewId")
    is_test: StrictBool = Field(default=False, alias="isTest")
    agent_focus: AgentFocus | None = Field(default=None, alias="agentFocus")


class EventBatchIn(BaseModel):
    """The body of POST /usage/events (documentation; parsing is done by hand)."""

    events: list[EventIn] = Field(min_length=1, max_length=1000)


class IngestResult(BaseModel):
    accepted: int
    duplicates: int


class VoidResult(BaseModel):
    id: str
    voided_at: datetime = Field(serialization_alias="voidedAt")


__all__ = [
    "CompanyUsage",
    "CostKeyUsage",
    "EventBatchIn",
    "EventIn",
    "IngestResult",
    "Period",
    "UsageReport",
    "VoidResult",
]
