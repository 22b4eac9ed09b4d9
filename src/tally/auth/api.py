"""Routes: /admin/api-keys."""

import uuid

from fastapi import APIRouter

from tally.auth import admin
from tally.auth.models import ApiKey
from tally.auth.schemas import CreatedKeyOut, KeyIn, KeyOut
from tally.core.envelope import EnvelopeResponse, success
from tally.core.headers import no_store
from tally.core.instants import utcnow
from tally.core.pagination import Paging, page_of
from tally.deps import Admin, DbSession

router = APIRouter(prefix="/admin", tags=["admin"])


def key_out(row: ApiKey) -> dict[str, object]:
    return KeyOut.model_validate(_fields(row)).model_dump(by_alias=True, mode="python")


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


@router.post("/api-keys", status_code=201, responses={201: {"model": CreatedKeyOut}})
def create_key(_admin: Admin, session: DbSession, body: KeyIn) -> EnvelopeResponse:
    """Create a key; the answer is the only time the key itself is shown."""
    row, raw = admin.create_key(session, body, utcnow())
    created = CreatedKeyOut.model_validate(_fields(row) | {"key": raw})
    return no_store(success(created.model_dump(by_alias=True, mode="python"), 201))


@router.get("/api-keys")
def list_keys(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Keys, oldest first; never a key or its hash."""
    items, total = admin.page_keys(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, key_out))


@router.delete("/api-keys/{key_id}", responses={200: {"model": KeyOut}})
def revoke_key(_admin: Admin, session: DbSession, key_id: uuid.UUID) -> EnvelopeResponse:
    """Revoke a key."""
    return success(key_out(admin.revoke_key(session, key_id, utcnow())))
