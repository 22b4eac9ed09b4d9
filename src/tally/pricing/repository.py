"""SQL for pricing rules."""

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.pricing.models import PricingRule


def rules_for_cost_keys(session: Session, cost_keys: Sequence[str]) -> list[PricingRule]:
    if not cost_keys:
        return []
    return list(session.scalars(select(PricingRule).where(PricingRule.cost_key.in_(cost_keys))))


def page_rules(session: Session, offset: int, limit: int) -> tuple[list[PricingRule], int]:
    total = session.scalar(select(func.count()).select_from(PricingRule)) or 0
    rows = session.scalars(
        select(PricingRule)
        .order_by(PricingRule.created_at, PricingRule.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total
