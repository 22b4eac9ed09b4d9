"""GET /billing/usage: the one-bucket case of the report computation."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.reporting import service
from tally.reporting.views import Across, company_head, company_totals, edges


def usage_report(
    session: Session, companies: Sequence[CompanyRef], start: datetime, end: datetime
) -> str:
    """The `data` of GET /billing/usage, as JSON text (tally.reporting.schemas.UsageReport)."""
    ordered = service.ordered(companies)
    across = Across(ordered)
    entries = []
    for item in service.series(session, ordered, [start, end]):
        company, usage = item.company, item.usage[0]
        across.add(company, usage)
        entries.append(f"{{{company_head(company)},{company_totals(company, usage)}}}")
    return (
        f'{{"period":{{{edges(start, end)}}},"companies":[{",".join(entries)}],{across.fields()}}}'
    )
