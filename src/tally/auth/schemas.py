"""Wire formats of API keys."""

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tally.auth.scopes import KeyKind, Scope
from tally.core.text import NoNul
from tally.core.wire import Instant, UuidString


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address or CIDR range") from exc


Network = Annotated[str, AfterValidator(_network)]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
    ]
    kind: KeyKind
    company_id: UuidString | None = Field(default=None, alias="companyId")
    ats_integration_id: UuidString | None = Field(default=None, alias="atsIntegrationId")
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    expires_at: Instant | None = Field(default=None, alias="expiresAt")
    # null allows every address; an empty list would read as "none" but allowed all.
    allowed_ips: list[Network] | None = Field(
        default=None, alias="allowedIps", min_length=1, max_length=100
    )
    # Null: the default of the key's kind (60 and 2,000 for company and ATS
    # keys, unlimited for platform keys). Strict: 1.0, "5" and true are refused.
    rate_limit_per_minute: int | None = Field(
        default=None, alias="rateLimitPerMinute", ge=1, le=1_000_000, strict=True
    )
    rate_limit_per_hour: int | None = Field(
        default=None, alias="rateLimitPerHour", ge=1, le=60_000_000, strict=True
    )
    environment: Literal["live", "test"] = "live"


class KeyOut(BaseModel):
    """A key as listed: never the key itself nor its hash."""

    id: uuid.UUID
    name: str
    prefix: str
    kind: KeyKind
    company_id: uuid.UUID | None = Field(serialization_alias="companyId")
    ats_integration_id: uuid.UUID | None = Field(serialization_alias="atsIntegrationId")
    scopes: list[Scope]
    expires_at: datetime | None = Field(serialization_alias="expiresAt")
    allowed_ips: list[str] | None = Field(serialization_alias="allowedIps")
    rate_limit_per_minute: int | None = Field(serialization_alias="rateLimitPerMinute")
    rate_limit_per_hour: int | None = Field(serialization_alias="rateLimitPerHour")
    revoked_at: datetime | None = Field(serialization_alias="revokedAt")
    last_used_at: datetime | None = Field(serialization_alias="lastUsedAt")
    created_at: datetime = Field(serialization_alias="createdAt")


class CreatedKeyOut(KeyOut):
    key: str
