"""Creating, listing and revoking API keys."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.auth import keys
from tally.auth.models import ApiKey
from tally.auth.schemas import KeyIn
from tally.auth.scopes import ALLOWED_SCOPES, KeyKind
from tally.companies import repository as companies
from tally.errors import NotFound, ValidationFailed


def _check_owner(session: Session, body: KeyIn) -> None:
    if body.kind is KeyKind.COMPANY:
        if body.company_id is None or body.ats_integration_id is not None:
            raise ValidationFailed.field("companyId", "a company key needs companyId (only)")
        if companies.get_company(session, body.company_id) is None:
            raise ValidationFailed.field("companyId", "no company with this id")
    elif body.kind is KeyKind.ATS:
        if body.ats_integration_id is None or body.company_id is not None:
            raise ValidationFailed.field(
                "atsIntegrationId", "an ATS key needs atsIntegrationId (only)"
            )
        if companies.get_ats(session, body.ats_integration_id) is None:
            raise ValidationFailed.field("atsIntegrationId", "no ATS integration with this id")
    elif body.company_id is not None or body.ats_integration_id is not None:
        raise ValidationFailed.field("kind", "a platform key has no companyId or atsIntegrationId")


def _check(session: Session, body: KeyIn, now: datetime) -> None:
    _check_owner(session, body)
    extra = set(body.scopes) - ALLOWED_SCOPES[body.kind]
    if extra:
        allowed = ", ".join(sorted(scope.value for scope in ALLOWED_SCOPES[body.kind]))
        raise ValidationFailed.field("scopes", f"a {body.kind.value} key may hold only {allowed}")
    if body.expires_at is not None:
        expires = body.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires <= now:
            raise ValidationFailed.field("expiresAt", "must be in the future")


def create_key(session: Session, body: KeyIn, now: datetime) -> tuple[ApiKey, str]:
    """A new key row and the key itself, which is never stored or shown again."""
    _check(session, body, now)
    raw = keys.generate_key(body.environment)
    expires = body.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    row = ApiKey(
        id=uuid.uuid4(),
        name=body.name,
        kind=body.kind.value,
        company_id=body.company_id,
        ats_integration_id=body.ats_integration_id,
        lookup_id=keys.lookup_id(raw),
        key_hash=keys.hash_key(raw),
        scopes=sorted({scope.value for scope in body.scopes}),
        allowed_ips=body.allowed_ips,
        rate_limit_per_minute=body.rate_limit_per_minute,
        rate_limit_per_hour=body.rate_limit_per_hour,
        expires_at=expires,
        revoked_at=None,
        last_used_at=None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, raw


def page_keys(session: Session, offset: int, limit: int) -> tuple[list[ApiKey], int]:
    total = session.scalar(select(func.count()).select_from(ApiKey)) or 0
    rows = session.scalars(
        select(ApiKey).order_by(ApiKey.created_at, ApiKey.id).offset(offset).limit(limit)
    )
    return list(rows), total


def revoke_key(session: Session, key_id: uuid.UUID, now: datetime) -> ApiKey:
    """Revoke (idempotent): the key fails from the next request on."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("no API key with this id")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return row
