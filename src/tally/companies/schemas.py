"""Wire formats of companies and ATS integrations."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from tally.core.text import NoNul
from tally.core.wire import UuidString

BillingSystem = Literal["minutes", "credits"]


def _trimmed(min_length: int) -> Callable[[str], str]:
    def trim(value: str) -> str:
        value = value.strip()
        if len(value) < min_length:
            raise ValueError(f"must have at least {min_length} characters besides spaces")
        return value

    return trim


# Lengths hold as sent (so the schema's maxLength is the whole truth), and
# the name is stored trimmed, still at least min_length long.
CompanyName = Annotated[
    str,
    StringConstraints(strict=True, min_length=2, max_length=100),
    AfterValidator(_trimmed(2)),
    NoNul,
]
AtsName = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=200),
    AfterValidator(_trimmed(1)),
    NoNul,
]


class AtsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AtsName


class AtsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime = Field(serialization_alias="createdAt")


class CompanyIn(BaseModel):
    """A new company; `id` may be given to keep the platform's own company id."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: UuidString | None = None
    name: CompanyName
    billing_system: BillingSystem = Field(alias="billingSystem")
    ats_integration_id: UuidString | None = Field(default=None, alias="atsIntegrationId")


class CompanyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Present means set: null is refused for these two (the schema says so too).
    name: CompanyName | SkipJsonSchema[None] = None
    billing_system: BillingSystem | SkipJsonSchema[None] = Field(
        default=None, alias="billingSystem"
    )
    ats_integration_id: UuidString | None = Field(default=None, alias="atsIntegrationId")


class CompanyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    billing_system: BillingSystem = Field(serialization_alias="billingSystem")
    ats_integration_id: uuid.UUID | None = Field(serialization_alias="atsIntegrationId")
    created_at: datetime = Field(serialization_alias="createdAt")
