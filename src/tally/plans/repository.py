"""SQL for plans and the crossings recorded against them."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tally.plans.models import Plan
from tally.webhooks.models import ThresholdCrossing


def get_plan(session: Session, company_id: uuid.UUID) -> Plan | None:
    return session.get(Plan, company_id)


def plans_of(session: Session, company_ids: Sequence[uuid.UUID]) -> list[Plan]:
    if not company_ids:
        return []
    return list(session.scalars(select(Plan).where(Plan.company_id.in_(company_ids))))


def recorded_thresholds(
    session: Session, periods: Sequence[tuple[uuid.UUID, datetime]]
) -> dict[uuid.UUID, set[int]]:
    """Thresholds recorded as crossed, per company, in the period starting at the given instant."""
    wanted = dict(periods)
    found: dict[uuid.UUID, set[int]] = {company_id: set() for company_id in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(
            ThresholdCrossing.company_id,
            ThresholdCrossing.period_start,
            ThresholdCrossing.threshold,
        ).where(ThresholdCrossing.company_id.in_(list(wanted)))
    )
    for company_id, period_start, threshold in rows:
        if wanted[company_id] == period_start:
            found[company_id].add(threshold)
    return found
