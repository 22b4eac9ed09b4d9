"""Routes: /admin/pricing-rules."""

from fastapi import APIRouter

from tally.core.envelope import EnvelopeResponse, success
from tally.core.instants import utcnow
from tally.core.pagination import Paging, page_of
from tally.core.quantities import from_scaled
from tally.deps import Admin, DbSession
from tally.pricing import repository, service
from tally.pricing.models import PricingRule
from tally.pricing.schemas import RuleIn, RuleOut

router = APIRouter(prefix="/admin", tags=["admin"])


def rule_out(rule: PricingRule) -> dict[str, object]:
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
    ).model_dump(by_alias=True)


@router.post("/pricing-rules", status_code=201, responses={201: {"model": RuleOut}})
def create_rule(_admin: Admin, session: DbSession, body: RuleIn) -> EnvelopeResponse:
    """Add a pricing rule; stored usage is never re-priced."""
    return success(rule_out(service.create_rule(session, body, utcnow())), 201)


@router.get("/pricing-rules")
def list_rules(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Pricing rules, oldest first."""
    items, total = repository.page_rules(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, rule_out))
