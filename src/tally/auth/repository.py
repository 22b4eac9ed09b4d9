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
    scopes: list[str]
    allowed_ips: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rate_limit_per_minute: int | None
    rate_limit_per_hour: int | None


# Built once: only the parameter changes from request to request.
_BY_DIGEST = select(*(ApiKey.__table__.c[name] for name in KeyRecord._fields)).where(
    ApiKey.key_hash == bindparam("key_hash")
)


def find_by_digest(session: Session, key_hash: str) -> KeyRecord | None:
    """The key whose whole-key digest this is (the column is unique)."""
    row = session.execute(_BY_DIGEST, {"key_hash": key_hash}).first()
    return None if row is None else KeyRecord(*row)


def touch_last_used(session: Session, key_id: uuid.UUID, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
