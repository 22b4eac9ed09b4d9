"""SQL for API keys."""

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.orm import Session

from tally.auth.models import ApiKey
from tally.companies.models import Company
from tally.companies.repository import CompanyRef


class KeyRecord(NamedTuple):
    """The columns authentication reads (a plain row: every request does this)."""

    id: uuid.UUID
    kind: str
    company_id: uuid.UUID | None
    ats_integration_id: uuid.UUID | None
    scopes: list[str]
    allowed_ips: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rate_limit_per_minute: int | None
    rate_limit_per_hour: int | None


# Built once: only the parameter changes from request to request.
# The key and, in the same statement, the companies it is tied to: its own
# company (a company key) or those its integration manages (an ATS key); a
# platform key's row has no company (both ids are null, and null equals
# nothing). One row per company, the key's columns repeated. Both ON terms
# are index seeks (the companies' primary key, ix_companies_ats_integration_id).
_KEY_COLUMNS = len(KeyRecord._fields)
_WITH_COMPANIES = (
    select(
        *(ApiKey.__table__.c[name] for name in KeyRecord._fields),
        Company.id,
        Company.name,
        Company.billing_system,
    )
    .select_from(ApiKey)
    .outerjoin(
        Company,
        or_(
            Company.id == ApiKey.company_id,
            Company.ats_integration_id == ApiKey.ats_integration_id,
        ),
    )
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


def find_with_companies(
    connection: Connection, key_hash: str
) -> tuple[KeyRecord, tuple[CompanyRef, ...]] | None:
    """The key of this digest and its companies, in one statement (same SQL for any digest)."""
    rows = connection.execute(_WITH_COMPANIES, {"key_hash": key_hash}).all()
    if not rows:
        return None
    key = KeyRecord(*rows[0][:_KEY_COLUMNS])
    companies = tuple(
        CompanyRef(*row[_KEY_COLUMNS:]) for row in rows if row[_KEY_COLUMNS] is not None
    )
    return key, companies


def touch_last_used(session: Session, key_id: uuid.UUID, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
