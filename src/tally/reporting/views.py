"""Typed results -> wire models: the per-company and the across-companies views of an interval."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tally.companies.repository import CompanyRef
from tally.core.quantities import from_scaled
from tally.reporting.results import Sums, Usage
from tally.reporting.schemas import CostKeyUsage

UNITS = ("minutes", "credits")


def unit_fields(billing_system: str, amount: int) -> dict[str, Decimal]:
    """{"minutes_used": ...} or {"credits_used": ...}: a company never mixes units."""
    return {f"{billing_system}_used": from_scaled(amount)}


def company_totals(company: CompanyRef, usage: Usage) -> dict[str, Any]:
    """The fields of one company's interval (SPEC section 2 rules 2, 4-7)."""
    unit = company.billing_system
    breakdown = []
    total = 0
    for key, sums in usage.counted():
        amount = sums.amount(unit)
        total += amount
        breakdown.append(
            CostKeyUsage(cost_key=key, events=sums.events, **unit_fields(unit, amount))
        )
    return {
        f"total_{unit}_used": from_scaled(total),
        "total_interviews": usage.interviews,
        "breakdown_by_cost_key": breakdown,
    }


class Across:
    """Sums over companies of one interval (SPEC section 2 rule 3).

    Each unit appears iff some company in scope bills in it, possibly as 0.
    """

    def __init__(self, companies: Sequence[CompanyRef]) -> None:
        systems = {company.billing_system for company in companies}
        self.units = [unit for unit in UNITS if unit in systems]
        self.totals = dict.fromkeys(self.units, 0)
        self.interviews = 0
        self.per_key: dict[str, dict[str, int]] = {}

    def add(self, company: CompanyRef, usage: Usage) -> None:
        unit = company.billing_system
        self.interviews += usage.interviews
        for key, sums in usage.counted():
            merged = self.per_key.setdefault(key, {"events": 0} | dict.fromkeys(self.units, 0))
            amount = sums.amount(unit)
            merged["events"] += sums.events
            merged[unit] += amount
            self.totals[unit] += amount

    def fields(self) -> dict[str, Any]:
        breakdown = [
            CostKeyUsage(
                cost_key=key,
                events=self.per_key[key]["events"],
                **{f"{unit}_used": from_scaled(self.per_key[key][unit]) for unit in self.units},
            )
            for key in sorted(self.per_key)
        ]
        return {
            **{f"total_{unit}_used": from_scaled(self.totals[unit]) for unit in self.units},
            "total_interviews": self.interviews,
            "breakdown_by_cost_key": breakdown,
        }


__all__ = ["Across", "Sums", "company_totals", "unit_fields"]
