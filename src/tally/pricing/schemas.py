"""Wire formats of pricing rules."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tally.core.instants import UtcInstant
from tally.core.quantities import QuantityError, to_decimal
from tally.usage.schemas import AgentFocus, CostKey


def _amount(value: Any) -> Decimal:
    try:
        return to_decimal(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from exc


# Below 10**9 with six decimals a JSON number has at most 15 significant
# digits, so it survives the JSON parser's float exactly.
Amount = Annotated[
    Decimal, BeforeValidator(_amount), Field(ge=0, lt=1_000_000_000, decimal_places=6)
]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cost_key: CostKey = Field(alias="costKey")
    agent_focus: AgentFocus | None = Field(default=None, alias="agentFocus")
    company_id: uuid.UUID | None = Field(default=None, alias="companyId")
    base_cost: Amount = Field(alias="baseCost")
    included_minutes: Amount = Field(default=Decimal(0), alias="includedMinutes")
    cost_per_minute: Amount = Field(default=Decimal(0), alias="costPerMinute")
    effective_from: UtcInstant | None = Field(default=None, alias="effectiveFrom")


class RuleOut(BaseModel):
    id: uuid.UUID
    cost_key: str = Field(serialization_alias="costKey")
    agent_focus: str | None = Field(serialization_alias="agentFocus")
    company_id: uuid.UUID | None = Field(serialization_alias="companyId")
    base_cost: Decimal = Field(serialization_alias="baseCost")
    included_minutes: Decimal = Field(serialization_alias="includedMinutes")
    cost_per_minute: Decimal = Field(serialization_alias="costPerMinute")
    effective_from: datetime = Field(serialization_alias="effectiveFrom")
    created_at: datetime = Field(serialization_alias="createdAt")
