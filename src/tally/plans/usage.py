"""How much each company used: the one place plans and the outbox ask the report."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.reporting import service as reporting


def used_by_company(
    session: Session, companies: Sequence[CompanyRef], start: datetime, end: datetime
) -> dict[uuid.UUID, int]:
    """Millionths of its own unit each company used over [start, end), as the report counts."""
    if not companies or start >= end:
        return dict.fromkeys((company.id for company in companies), 0)
    return {
        entry.company.id: sum(
            sums.amount(entry.company.billing_system) for _, sums in entry.usage[0].counted()
        )
        for entry in reporting.series(session, companies, [start, end])
    }
