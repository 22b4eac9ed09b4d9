"""How much each company used: the one place plans and the outbox ask the report.

The report layer is moving (tally.usage.report today); repoint this function
and nothing else when it does.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.quantities import to_scaled
from tally.usage.report import usage_report


def used_by_company(
    session: Session, companies: Sequence[CompanyRef], start: datetime, end: datetime
) -> dict[uuid.UUID, int]:
    """Millionths of its own unit each company used over [start, end), as the report counts."""
    if not companies or start >= end:
        return dict.fromkeys((company.id for company in companies), 0)
    report = usage_report(session, companies, start, end)
    used: dict[uuid.UUID, int] = {}
    for entry in report["companies"]:
        amount = entry.get("totalMinutesUsed", entry.get("totalCreditsUsed"))
        used[uuid.UUID(entry["companyId"])] = to_scaled(amount)
    return used
