"""Routes: /admin/ats-integrations and /admin/companies."""

import uuid

from fastapi import APIRouter

from tally.companies import repository, service
from tally.companies.models import AtsIntegration, Company
from tally.companies.schemas import AtsIn, AtsOut, CompanyIn, CompanyOut, CompanyPatch
from tally.core.envelope import EnvelopeResponse, success
from tally.core.instants import utcnow
from tally.core.pagination import Paging, page_of
from tally.deps import Admin, DbSession

router = APIRouter(prefix="/admin", tags=["admin"])


def ats_out(ats: AtsIntegration) -> dict[str, object]:
    return AtsOut(id=ats.id, name=ats.name, created_at=ats.created_at).model_dump(by_alias=True)


def company_out(company: Company) -> dict[str, object]:
    return CompanyOut(
        id=company.id,
        name=company.name,
        billing_system=company.billing_system,
        ats_integration_id=company.ats_integration_id,
        created_at=company.created_at,
    ).model_dump(by_alias=True)


@router.post("/ats-integrations", status_code=201, responses={201: {"model": AtsOut}})
def create_ats(_admin: Admin, session: DbSession, body: AtsIn) -> EnvelopeResponse:
    """Register an ATS integration."""
    return success(ats_out(service.create_ats(session, body, utcnow())), 201)


@router.get("/ats-integrations")
def list_ats(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """ATS integrations, oldest first."""
    items, total = repository.page_ats(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, ats_out))


@router.post("/companies", status_code=201, responses={201: {"model": CompanyOut}})
def create_company(_admin: Admin, session: DbSession, body: CompanyIn) -> EnvelopeResponse:
    """Create a company, optionally managed by an ATS integration."""
    return success(company_out(service.create_company(session, body, utcnow())), 201)


@router.get("/companies")
def list_companies(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Companies, oldest first."""
    items, total = repository.page_companies(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, company_out))


@router.get("/companies/{company_id}", responses={200: {"model": CompanyOut}})
def get_company(_admin: Admin, session: DbSession, company_id: uuid.UUID) -> EnvelopeResponse:
    """One company."""
    return success(company_out(service.get_company(session, company_id)))


@router.patch("/companies/{company_id}", responses={200: {"model": CompanyOut}})
def patch_company(
    _admin: Admin, session: DbSession, company_id: uuid.UUID, body: CompanyPatch
) -> EnvelopeResponse:
    """Rename a company, change its billing system, or attach or detach its ATS."""
    return success(company_out(service.update_company(session, company_id, body)))
