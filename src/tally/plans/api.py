"""Routes: /admin/companies/{id}/plan and GET /billing/allowance."""

import uuid
from typing import Annotated

from fastapi import APIRouter

from tally.bodies import JsonBody
from tally.core.envelope import (
    AUTHENTICATED,
    WITH_BODY,
    Envelope,
    EnvelopeResponse,
    error_responses,
    success,
)
from tally.core.http import CompanyIdQuery, parse_uuid
from tally.core.instants import utcnow
from tally.deps import Admin, DbSession, UsageReader
from tally.plans import service
from tally.plans.schemas import AllowancesOut, PlanIn, PlanOut

router = APIRouter(tags=["plans"], responses=error_responses(*AUTHENTICATED))
PATH = "/admin/companies/{company_id}/plan"
ONE = error_responses(404)


@router.put(PATH, response_model=Envelope[PlanOut], responses=error_responses(*WITH_BODY, 404))
def put_plan(
    _admin: Admin,
    session: DbSession,
    company_id: uuid.UUID,
    body: Annotated[PlanIn, JsonBody(PlanIn)],
) -> EnvelopeResponse:
    """Set a company's plan (allowance per period); replaces any earlier plan."""
    return success(service.put_plan(session, company_id, body, utcnow()))


@router.get(PATH, response_model=Envelope[PlanOut], responses=ONE)
def get_plan(_admin: Admin, session: DbSession, company_id: uuid.UUID) -> EnvelopeResponse:
    """A company's plan; 404 if it has none."""
    return success(service.get_plan(session, company_id))


@router.delete(PATH, response_model=Envelope[PlanOut], responses=ONE)
def delete_plan(_admin: Admin, session: DbSession, company_id: uuid.UUID) -> EnvelopeResponse:
    """Remove a company's plan; answers the plan removed."""
    return success(service.delete_plan(session, company_id))


@router.get("/billing/allowance", response_model=Envelope[AllowancesOut])
def get_allowance(
    principal: UsageReader,
    session: DbSession,
    company_id: CompanyIdQuery = None,
) -> EnvelopeResponse:
    """Usage against the plan in the current period, for the companies in scope with a plan."""
    requested = parse_uuid(company_id, "companyId") if company_id is not None else None
    return success(service.allowances(session, principal, requested, utcnow()))
