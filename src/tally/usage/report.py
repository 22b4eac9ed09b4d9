"""The usage report: GET /billing/usage over the caller's companies.

Sums come from the running totals kept on write plus the raw events of the
window's partial hours (see tally.usage.buckets), so the cost of a query
grows with neither the number of events nor the length of the window.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.instants import format_instant, to_micros
from tally.core.quantities import from_scaled
from tally.usage import report_repository
from tally.usage.buckets import split


@dataclass
class _Sums:
    events: int = 0
    minutes: int = 0
    credits: int = 0

    def add(self, events: int, minutes: int, credits: int) -> None:
        self.events += events
        self.minutes += minutes
        self.credits += credits


@dataclass
class _CompanyTotals:
    by_cost_key: dict[str, _Sums] = field(default_factory=dict)
    interviews: int = 0


def _collect(
    session: Session, company_ids: Sequence[uuid.UUID], start: int, end: int
) -> dict[uuid.UUID, _CompanyTotals]:
    totals: dict[uuid.UUID, _CompanyTotals] = {cid: _CompanyTotals() for cid in company_ids}
    edges, window = split(start, end)
    for company_id, cost_key, events, minutes, credits, interviews in report_repository.sums(
        session, company_ids, edges, window
    ):
        company = totals[company_id]
        company.interviews += interviews
        if cost_key is not None:
            company.by_cost_key.setdefault(cost_key, _Sums()).add(events, minutes, credits)
    return totals


def _amount_field(billing_system: str) -> str:
    return "minutesUsed" if billing_system == "minutes" else "creditsUsed"


def _total_field(billing_system: str) -> str:
    return "totalMinutesUsed" if billing_system == "minutes" else "totalCreditsUsed"


def _company_entry(company: CompanyRef, totals: _CompanyTotals) -> dict[str, Any]:
    unit = _amount_field(company.billing_system)
    breakdown = []
    total = 0
    for cost_key in sorted(totals.by_cost_key):
        sums = totals.by_cost_key[cost_key]
        if sums.events == 0:
            continue
        amount = sums.minutes if unit == "minutesUsed" else sums.credits
        total += amount
        breakdown.append({"costKey": cost_key, "events": sums.events, unit: from_scaled(amount)})
    return {
        "companyId": str(company.id),
        "companyName": company.name,
        "billingSystem": company.billing_system,
        _total_field(company.billing_system): from_scaled(total),
        "totalInterviews": totals.interviews,
        "breakdownByCostKey": breakdown,
    }


def _top_level(
    ordered: Sequence[CompanyRef], totals: dict[uuid.UUID, _CompanyTotals]
) -> dict[str, Any]:
    """Sums over companies; each unit appears iff some company bills in it."""
    systems = {company.billing_system for company in ordered}
    units = [system for system in ("minutes", "credits") if system in systems]
    top: dict[str, int] = dict.fromkeys(units, 0)
    per_key: dict[str, dict[str, int]] = {}
    for company in ordered:
        unit = company.billing_system
        for cost_key, sums in totals[company.id].by_cost_key.items():
            if sums.events == 0:
                continue
            merged = per_key.setdefault(cost_key, {"events": 0} | dict.fromkeys(units, 0))
            amount = sums.minutes if unit == "minutes" else sums.credits
            merged["events"] += sums.events
            merged[unit] += amount
            top[unit] += amount
    result: dict[str, Any] = {_total_field(unit): from_scaled(top[unit]) for unit in units}
    result["totalInterviews"] = sum(totals[company.id].interviews for company in ordered)
    result["breakdownByCostKey"] = [
        {"costKey": key, "events": per_key[key]["events"]}
        | {_amount_field(unit): from_scaled(per_key[key][unit]) for unit in units}
        for key in sorted(per_key)
    ]
    return result


def usage_report(
    session: Session, companies: Sequence[CompanyRef], start: datetime, end: datetime
) -> dict[str, Any]:
    """The `data` of GET /billing/usage for these companies over [start, end)."""
    ordered = sorted(companies, key=lambda company: (company.name, str(company.id)))
    totals = _collect(
        session, [company.id for company in ordered], to_micros(start), to_micros(end)
    )
    entries = [_company_entry(company, totals[company.id]) for company in ordered]
    return {
        "period": {"start": format_instant(start), "end": format_instant(end)},
        "companies": entries,
        **_top_level(ordered, totals),
    }
