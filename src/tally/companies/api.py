"""Routes: /admin/ats-integrations and /admin/companies."""

import uuid
from typing import Annotated

from fastapi import APIRouter

from tally.bodies import JsonBody
from tally.companies import repository, service
from tally.companies.schemas import AtsIn, AtsOut, CompanyIn, CompanyOut, CompanyPatch
from tally.core.envelope import (
    AUTHENTICATED,
    WITH_BODY,
    Envelope,
    EnvelopeResponse,
    error_responses,
    success,
)
from tally.core.instants import utcnow
from tally.core.pagination import Page, Paging, page_of
from tally.deps import Admin, DbSession

router = APIRouter(prefix="/admin", tags=["admin"], responses=error_responses(*AUTHENTICATED))
BODY = error_responses(*WITH_BODY)
ONE = error_responses(404)


@router.post("/ats-integrations", status_code=201, response_model=Envelope[AtsOut], responses=BODY)
def create_ats(
    _admin: Admin, session: DbSession, body: Annotated[AtsIn, JsonBody(AtsIn)]
) -> EnvelopeResponse:
    """Register an ATS integration."""
    ats = service.create_ats(session, body, utcnow())
    return success(AtsOut.model_validate(ats), 201)


@router.get("/ats-integrations", response_model=Envelope[Page[AtsOut]])
def list_ats(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """ATS integrations, oldest first."""
    items, total = repository.page_ats(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, AtsOut.model_validate))


@router.post(
    "/companies",
    status_code=201,
    response_model=Envelope[CompanyOut],
    responses=BODY | error_responses(409),
)
def create_company(
    _admin: Admin, session: DbSession, body: Annotated[CompanyIn, JsonBody(CompanyIn)]
) -> EnvelopeResponse:
    """Create a company, optionally managed by an ATS integration."""
    company = service.create_company(session, body, utcnow())
    return success(CompanyOut.model_validate(company), 201)


@router.get("/companies", response_model=Envelope[Page[CompanyOut]])
def list_companies(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Companies, oldest first."""
    items, total = repository.page_companies(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, CompanyOut.model_validate))


@router.get("/companies/{company_id}", response_model=Envelope[CompanyOut], responses=ONE)
def get_company(_admin: Admin, session: DbSession, company_id: uuid.UUID) -> EnvelopeResponse:
    """One company."""
    return success(CompanyOut.model_validate(service.get_company(session, company_id)))


@router.patch(
    "/companies/{company_id}",
    response_model=Envelope[CompanyOut],
    responses=BODY | ONE,
)
def patch_company(
    _admin: Admin,
    session: DbSession,
    company_id: uuid.UUID,
    body: Annotated[CompanyPatch, JsonBody(CompanyPatch)],
) -> EnvelopeResponse:
    """Rename a company, change its billing system, or attach or detach its ATS."""
    return success(CompanyOut.model_validate(service.update_company(session, company_id, body)))
