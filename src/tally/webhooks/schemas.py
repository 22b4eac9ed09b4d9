"""Wire formats of webhook endpoints and deliveries."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tally.core.text import NoNul
from tally.core.wire import UuidString

EVENT_TYPE = "usage.threshold_crossed"
DeliveryStatus = Literal["pending", "delivered", "failed"]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: Annotated[
        str,
        StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=2048),
        NoNul,
    ] = Field(description="https URL of a public host (private targets are refused with 400)")
    description: Annotated[str, StringConstraints(strict=True, max_length=500), NoNul] | None = None
    company_id: UuidString | None = Field(default=None, alias="companyId")
    ats_integration_id: UuidString | None = Field(default=None, alias="atsIntegrationId")


class EndpointOut(BaseModel):
    """An endpoint as lists show it: never its secret."""

    id: uuid.UUID
    url: str
    description: str | None
    company_id: uuid.UUID | None = Field(serialization_alias="companyId")
    ats_integration_id: uuid.UUID | None = Field(serialization_alias="atsIntegrationId")
    created_at: datetime = Field(serialization_alias="createdAt")


class CreatedEndpointOut(EndpointOut):
    """The answer to its creation, the only time the signing secret is shown."""

    secret: str


class DeliveryOut(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID = Field(serialization_alias="endpointId")
    event_type: str = Field(serialization_alias="eventType")
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = Field(serialization_alias="lastStatusCode")
    next_attempt_at: datetime | None = Field(serialization_alias="nextAttemptAt")
    created_at: datetime = Field(serialization_alias="createdAt")
