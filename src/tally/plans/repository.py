"""SQL for plans and the crossings recorded against them."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.plans.models import Plan, PlanUsage
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


def remember_used(
    session: Session, start: datetime, end: datetime, used: Sequence[tuple[CompanyRef, int]]
) -> None:
    """Store what these companies used in [start, end), in their units (plan_usage)."""
    if not used:
        return
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(PlanUsage)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["company_id"],
            set_={
                "period_start": statement.excluded.period_start,
                "period_end": statement.excluded.period_end,
                "billing_system": statement.excluded.billing_system,
                "used": statement.excluded.used,
            },
        ),
        [
            {
                "company_id": company.id,
                "period_start": start,
                "period_end": end,
                "billing_system": company.billing_system,
                "used": amount,
            }
            for company, amount in used
        ],
    )


def forget_used(session: Session, company_ids: Sequence[uuid.UUID] | None = None) -> None:
    """Drop what the outbox counted for these companies (all without ids): their
    usage of a period changed other than by new events it saw."""
    statement = delete(PlanUsage)
    if company_ids is not None:
        statement = statement.where(PlanUsage.company_id.in_(company_ids))
    session.execute(statement)
