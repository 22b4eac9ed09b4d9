"""Moved to tally.reporting (one computation at N instants); kept so old imports work."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.reporting.usage import usage_report as _usage_report


def usage_report(
    session: Session, companies: Sequence[CompanyRef], start: datetime, end: datetime
) -> dict[str, Any]:
    """The `data` of GET /billing/usage as a plain dict (see tally.reporting.usage)."""
    return _usage_report(session, companies, start, end)
