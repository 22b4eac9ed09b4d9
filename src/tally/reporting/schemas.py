"""Wire formats of usage reports: GET /billing/usage, its series, and the CSV's columns.

Unit fields are None when they do not apply and are dropped from the JSON
(`dump`), never sent as null: SPEC section 2 rules 2 and 3.
"""

import uuid
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CSV_COLUMNS = (
    "periodStart",
    "periodEnd",
    "companyId",
    "companyName",
    "billingSystem",
    "costKey",
    "events",
    "minutesUsed",
    "creditsUsed",
)


class WireModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """camelCase, decimals kept exact, absent units left out."""
        return self.model_dump(mode="python", by_alias=True, exclude_none=True)


class Period(WireModel):
    start: str
    end: str


class CostKeyUsage(WireModel):
    cost_key: str = Field(alias="costKey")
    events: int
    minutes_used: Decimal | None = Field(default=None, alias="minutesUsed")
    credits_used: Decimal | None = Field(default=None, alias="creditsUsed")


class CompanyUsage(WireModel):
    company_id: uuid.UUID = Field(alias="companyId")
    company_name: str = Field(alias="companyName")
    billing_system: Literal["minutes", "credits"] = Field(alias="billingSystem")
    total_minutes_used: Decimal | None = Field(default=None, alias="totalMinutesUsed")
    total_credits_used: Decimal | None = Field(default=None, alias="totalCreditsUsed")
    total_interviews: int = Field(alias="totalInterviews")
    breakdown_by_cost_key: list[CostKeyUsage] = Field(alias="breakdownByCostKey")


class UsageReport(WireModel):
    """Usage of the companies in the caller's reach over [start, end)."""

    period: Period
    companies: list[CompanyUsage]
    total_minutes_used: Decimal | None = Field(default=None, alias="totalMinutesUsed")
    total_credits_used: Decimal | None = Field(default=None, alias="totalCreditsUsed")
    total_interviews: int = Field(alias="totalInterviews")
    breakdown_by_cost_key: list[CostKeyUsage] = Field(alias="breakdownByCostKey")


class UsageBucket(WireModel):
    """One bucket [start, end) of a series, UTC with Z, and its totals."""

    start: str
    end: str
    total_minutes_used: Decimal | None = Field(default=None, alias="totalMinutesUsed")
    total_credits_used: Decimal | None = Field(default=None, alias="totalCreditsUsed")
    total_interviews: int = Field(alias="totalInterviews")
    breakdown_by_cost_key: list[CostKeyUsage] = Field(alias="breakdownByCostKey")


class CompanySeries(WireModel):
    company_id: uuid.UUID = Field(alias="companyId")
    company_name: str = Field(alias="companyName")
    billing_system: Literal["minutes", "credits"] = Field(alias="billingSystem")
    buckets: list[UsageBucket]


class UsageSeries(WireModel):
    """GET /billing/usage/series: per company and across companies, bucket by bucket."""

    period: Period
    granularity: Literal["hour", "day", "week", "month"]
    time_zone: str = Field(alias="timeZone")
    companies: list[CompanySeries]
    buckets: list[UsageBucket]
