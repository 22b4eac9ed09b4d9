"""Wire formats of plans and of GET /billing/allowance."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    WithJsonSchema,
)

from tally.core.envelope import Number
from tally.core.wire import exact_number
from tally.errors import ValidationFailed

MAX_THRESHOLDS = 20


# Millionths of less than 10**12 fit a BIGINT with room for every sum.
ALLOWANCE_LIMIT = 10**12


def _allowance(value: Any) -> Decimal:
    number = exact_number(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    if number >= ALLOWANCE_LIMIT:
        raise ValueError(f"must be less than {ALLOWANCE_LIMIT}")
    return number


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from exc
    return name


def _thresholds(values: list[int]) -> list[int]:
    return sorted(set(values))


# 0 < x < 10**12, at most six decimal places, parsed exactly (a JSON number,
# never a string). Amount's bound (>= 0) would let 0 through: its own bound here.
Allowance = Annotated[
    Decimal,
    BeforeValidator(_allowance),
    WithJsonSchema(
        {
            "type": "number",
            "exclusiveMinimum": 0,
            "exclusiveMaximum": ALLOWANCE_LIMIT,
            "description": "exact, at most 6 decimal places",
        }
    ),
]
Threshold = Annotated[StrictInt, Field(ge=1, le=1000)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_zone)]


class PlanIn(BaseModel):
    """The body of PUT /admin/companies/{id}/plan."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    allowance: Allowance
    period: Literal["month", "year"]
    anchor_day: Annotated[StrictInt, Field(ge=1, le=28)] = Field(default=1, alias="anchorDay")
    # The month a yearly period starts in; default: the month the plan is
    # first written, in the plan's zone (see docs/decisions.md).
    anchor_month: Annotated[StrictInt, Field(ge=1, le=12)] | None = Field(
        default=None, alias="anchorMonth"
    )
    time_zone: TimeZone = Field(default="UTC", alias="timeZone")
    thresholds: Annotated[
        list[Threshold], Field(min_length=1, max_length=MAX_THRESHOLDS), AfterValidator(_thresholds)
    ] = Field(default_factory=lambda: [80, 100])

    @classmethod
    def parse(cls, body: Any) -> "PlanIn":
        """Validate a body parsed with exact decimals; 400 naming every bad field."""
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise validation_failed(exc) from exc


def validation_failed(exc: ValidationError) -> ValidationFailed:
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "body",
            "message": error["msg"].removeprefix("Value error, "),
        }
        for error in exc.errors(include_url=False)
    ]
    fields = ", ".join(error["field"] for error in errors)
    return ValidationFailed(f"invalid request: {fields}", details={"errors": errors})


class PlanOut(BaseModel):
    company_id: uuid.UUID = Field(serialization_alias="companyId")
    unit: Literal["minutes", "credits"]
    allowance: Number
    period: Literal["month", "year"]
    anchor_day: int = Field(serialization_alias="anchorDay")
    anchor_month: int = Field(serialization_alias="anchorMonth")
    time_zone: str = Field(serialization_alias="timeZone")
    thresholds: list[int]
    created_at: datetime = Field(serialization_alias="createdAt")
    updated_at: datetime = Field(serialization_alias="updatedAt")


class AllowanceOut(BaseModel):
    """One company's standing against its plan in the current period."""

    company_id: uuid.UUID = Field(serialization_alias="companyId")
    company_name: str = Field(serialization_alias="companyName")
    billing_system: Literal["minutes", "credits"] = Field(serialization_alias="billingSystem")
    unit: Literal["minutes", "credits"]
    period_start: datetime = Field(serialization_alias="periodStart")
    period_end: datetime = Field(serialization_alias="periodEnd")
    allowance: Number
    used: Number
    remaining: Number = Field(description="negative once the allowance is exceeded")
    percent_used: Number = Field(serialization_alias="percentUsed")
    projected_used: Number = Field(serialization_alias="projectedUsed")
    crossed_thresholds: list[int] = Field(serialization_alias="crossedThresholds")
    status: Literal["ok", "exceeded"]


class AllowancesOut(BaseModel):
    companies: list[AllowanceOut]
