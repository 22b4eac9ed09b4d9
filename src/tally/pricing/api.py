"""Routes: /admin/pricing-rules."""

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
from tally.core.instants import utcnow
from tally.core.pagination import Page, Paging, page_of
from tally.core.quantities import from_scaled
from tally.deps import Admin, DbSession
from tally.pricing import repository, service
from tally.pricing.models import PricingRule
from tally.pricing.schemas import RuleIn, RuleOut

router = APIRouter(prefix="/admin", tags=["admin"], responses=error_responses(*AUTHENTICATED))


def rule_out(rule: PricingRule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        cost_key=rule.cost_key,
        agent_focus=rule.agent_focus,
        company_id=rule.company_id,
        base_cost=from_scaled(rule.base_cost),
        included_minutes=from_scaled(rule.included_minutes),
        cost_per_minute=from_scaled(rule.cost_per_minute),
        effective_from=rule.effective_from,
        created_at=rule.created_at,
    )


@router.post(
    "/pricing-rules",
    status_code=201,
    response_model=Envelope[RuleOut],
    responses=error_responses(*WITH_BODY),
)
def create_rule(
    _admin: Admin, session: DbSession, body: Annotated[RuleIn, JsonBody(RuleIn)]
) -> EnvelopeResponse:
    """Add a pricing rule; stored usage is never re-priced."""
    return success(rule_out(service.create_rule(session, body, utcnow())), 201)


@router.get("/pricing-rules", response_model=Envelope[Page[RuleOut]])
def list_rules(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Pricing rules, oldest first."""
    items, total = repository.page_rules(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, rule_out))
