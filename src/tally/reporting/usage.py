"""GET /billing/usage: the one-bucket case of the report computation."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.instants import format_instant
from tally.reporting import service
from tally.reporting.views import Across, company_totals


def usage_report(
    session: Session, companies: Sequence[CompanyRef], start: datetime, end: datetime
) -> dict[str, Any]:
    """The `data` of GET /billing/usage (as tally.reporting.schemas.UsageReport dumps it)."""
    ordered = service.ordered(companies)
    across = Across(ordered)
    entries = []
    for item in service.series(session, ordered, [start, end]):
        company, usage = item.company, item.usage[0]
        across.add(company, usage)
        entries.append(
            {
                "companyId": str(company.id),
                "companyName": company.name,
                "billingSystem": company.billing_system,
            }
            | company_totals(company, usage)
        )
    return {
        "period": {"start": format_instant(start), "end": format_instant(end)},
        "companies": entries,
        **across.fields(),
    }
