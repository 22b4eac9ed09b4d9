"""SQL for API keys."""

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tally.auth.models import ApiKey


def find_by_lookup_id(session: Session, lookup_id: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.lookup_id == lookup_id)))


def touch_last_used(session: Session, key_id: uuid.UUID, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
