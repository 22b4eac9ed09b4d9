"""Routes: /admin/companies/{id}/plan and GET /billing/allowance."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tally.core.envelope import EnvelopeResponse, success
from tally.core.http import json_body, parse_uuid
from tally.core.instants import utcnow
from tally.deps import Admin, DbSession, UsageReader
from tally.plans import service
from tally.plans.schemas import AllowancesOut, PlanIn, PlanOut

router = APIRouter(tags=["plans"])

_PLAN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PlanIn.model_json_schema(by_alias=True)}},
    }
}


def _plan(plan: PlanOut) -> dict[str, Any]:
    return plan.model_dump(by_alias=True)


@router.put(
    "/admin/companies/{company_id}/plan",
    responses={200: {"model": PlanOut}},
    openapi_extra=_PLAN_BODY,
)
def put_plan(
    _admin: Admin,
    body: Annotated[Any, Depends(json_body)],
    session: DbSession,
    company_id: uuid.UUID,
) -> EnvelopeResponse:
    """Set a company's plan (allowance per period); replaces any earlier plan."""
    plan = service.put_plan(session, company_id, PlanIn.parse(body), utcnow())
    return success(_plan(plan))


@router.get("/admin/companies/{company_id}/plan", responses={200: {"model": PlanOut}})
def get_plan(_admin: Admin, session: DbSession, company_id: uuid.UUID) -> EnvelopeResponse:
    """A company's plan; 404 if it has none."""
    return success(_plan(service.get_plan(session, company_id)))


@router.delete("/admin/companies/{company_id}/plan", responses={200: {"model": PlanOut}})
def delete_plan(_admin: Admin, session: DbSession, company_id: uuid.UUID) -> EnvelopeResponse:
    """Remove a company's plan; answers the plan removed."""
    return success(_plan(service.delete_plan(session, company_id)))


@router.get("/billing/allowance", responses={200: {"model": AllowancesOut}})
def get_allowance(
    principal: UsageReader,
    session: DbSession,
    company_id: Annotated[str | None, Query(alias="companyId")] = None,
) -> EnvelopeResponse:
    """Usage against the plan in the current period, for the companies in scope with a plan."""
    requested = parse_uuid(company_id, "companyId") if company_id is not None else None
    answer = service.allowances(session, principal, requested, utcnow())
    return success(answer.model_dump(by_alias=True))
