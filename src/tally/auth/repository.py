"""SQL for API keys."""

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from tally.auth.models import ApiKey


class KeyRecord(NamedTuple):
    """The columns authentication reads (a plain row: every request does this)."""

    id: uuid.UUID
    kind: str
    company_id: uuid.UUID | None
    ats_integration_id: uuid.UUID | None
    key_hash: str
    scopes: list[str]
    allowed_ips: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


# Built once: only the parameter changes from request to request.
_BY_LOOKUP_ID = select(*(ApiKey.__table__.c[name] for name in KeyRecord._fields)).where(
    ApiKey.lookup_id == bindparam("lookup_id")
)


def find_by_lookup_id(session: Session, lookup_id: str) -> list[KeyRecord]:
    rows = session.execute(_BY_LOOKUP_ID, {"lookup_id": lookup_id})
    return [KeyRecord(*row) for row in rows]


def touch_last_used(session: Session, key_id: uuid.UUID, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
