"""Pricing rules: creating them, and loading the rule book that rates events."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from tally.companies import repository as companies
from tally.core.instants import to_micros
from tally.core.quantities import to_scaled
from tally.errors import ValidationFailed
from tally.pricing import repository
from tally.pricing.models import PricingRule
from tally.pricing.rating import Rule, RuleBook
from tally.pricing.schemas import RuleIn


def _as_rule(row: PricingRule) -> Rule:
    return Rule(
        id=row.id,
        cost_key=row.cost_key,
        agent_focus=row.agent_focus,
        company_id=row.company_id,
        base_cost=row.base_cost,
        included_minutes=row.included_minutes,
        cost_per_minute=row.cost_per_minute,
        effective_from=to_micros(row.effective_from),
        created_seq=to_micros(row.created_at),
    )


def rule_book(session: Session, cost_keys: Sequence[str]) -> RuleBook:
    """Every rule of these cost keys, ready to choose the one in force per event."""
    return RuleBook(_as_rule(row) for row in repository.rules_for_cost_keys(session, cost_keys))


def create_rule(session: Session, body: RuleIn, now: datetime) -> PricingRule:
    """A new rule; it prices events from effectiveFrom on (default: now)."""
    if body.company_id is not None and companies.get_company(session, body.company_id) is None:
        raise ValidationFailed.field("companyId", "no company with this id")
    effective = body.effective_from or now
    if effective.tzinfo is None:
        effective = effective.replace(tzinfo=UTC)
    rule = PricingRule(
        id=uuid.uuid4(),
        cost_key=body.cost_key,
        agent_focus=body.agent_focus,
        company_id=body.company_id,
        base_cost=to_scaled(body.base_cost),
        included_minutes=to_scaled(body.included_minutes),
        cost_per_minute=to_scaled(body.cost_per_minute),
        effective_from=effective,
        created_at=now,
    )
    session.add(rule)
    session.flush()
    return rule
