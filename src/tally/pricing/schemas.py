"""Wire formats of pricing rules."""

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from tally.core.envelope import Number
from tally.core.wire import Amount, Instant, UuidString
from tally.usage.schemas import AgentFocus, CostKey


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cost_key: CostKey = Field(alias="costKey")
    agent_focus: AgentFocus | None = Field(default=None, alias="agentFocus")
    company_id: UuidString | None = Field(default=None, alias="companyId")
    base_cost: Amount = Field(alias="baseCost")
    included_minutes: Amount = Field(default=Decimal(0), alias="includedMinutes")
    cost_per_minute: Amount = Field(default=Decimal(0), alias="costPerMinute")
    effective_from: Instant | None = Field(default=None, alias="effectiveFrom")


class RuleOut(BaseModel):
    id: uuid.UUID
    cost_key: str = Field(serialization_alias="costKey")
    agent_focus: AgentFocus | None = Field(serialization_alias="agentFocus")
    company_id: uuid.UUID | None = Field(serialization_alias="companyId")
    base_cost: Number = Field(serialization_alias="baseCost")
    included_minutes: Number = Field(serialization_alias="includedMinutes")
    cost_per_minute: Number = Field(serialization_alias="costPerMinute")
    effective_from: datetime = Field(serialization_alias="effectiveFrom")
    created_at: datetime = Field(serialization_alias="createdAt")
