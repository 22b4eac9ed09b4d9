"""Routes: /admin/api-keys."""

import uuid
from typing import Annotated

from fastapi import APIRouter

from tally.auth import admin
from tally.auth.models import ApiKey
from tally.auth.schemas import CreatedKeyOut, KeyIn, KeyOut
from tally.bodies import JsonBody
from tally.core.envelope import (
    AUTHENTICATED,
    WITH_BODY,
    Envelope,
    EnvelopeResponse,
    error_responses,
    success,
)
from tally.core.headers import no_store
from tally.core.instants import utcnow
from tally.core.pagination import Page, Paging, page_of
from tally.deps import Admin, DbSession

router = APIRouter(prefix="/admin", tags=["admin"], responses=error_responses(*AUTHENTICATED))


def key_out(row: ApiKey) -> KeyOut:
    return KeyOut.model_validate(_fields(row))


def _fields(row: ApiKey) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.lookup_id,
        "kind": row.kind,
        "company_id": row.company_id,
        "ats_integration_id": row.ats_integration_id,
        "scopes": row.scopes,
        "expires_at": row.expires_at,
        "allowed_ips": row.allowed_ips,
        "rate_limit_per_minute": row.rate_limit_per_minute,
        "rate_limit_per_hour": row.rate_limit_per_hour,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
        "created_at": row.created_at,
    }


@router.post(
    "/api-keys",
    status_code=201,
    response_model=Envelope[CreatedKeyOut],
    responses=error_responses(*WITH_BODY),
)
def create_key(
    _admin: Admin, session: DbSession, body: Annotated[KeyIn, JsonBody(KeyIn)]
) -> EnvelopeResponse:
    """Create a key; the answer is the only time the key itself is shown."""
    row, raw = admin.create_key(session, body, utcnow())
    return no_store(success(CreatedKeyOut.model_validate(_fields(row) | {"key": raw}), 201))


@router.get("/api-keys", response_model=Envelope[Page[KeyOut]])
def list_keys(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Keys, oldest first; never a key or its hash."""
    items, total = admin.page_keys(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, key_out))


@router.delete(
    "/api-keys/{key_id}", response_model=Envelope[KeyOut], responses=error_responses(404)
)
def revoke_key(_admin: Admin, session: DbSession, key_id: uuid.UUID) -> EnvelopeResponse:
    """Revoke a key."""
    return success(key_out(admin.revoke_key(session, key_id, utcnow())))
