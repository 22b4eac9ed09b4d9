"""Typed results -> the wire format of one interval, per company and across companies.

The dicts built here are exactly what the models of tally.reporting.schemas
dump (same camelCase keys, same order, unit fields absent rather than null);
tests/reporting/test_views.py holds them to it. They are built directly
because a 1,000-bucket series for 500 companies would otherwise spend most of
its time constructing and dumping half a million pydantic models.
"""

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import simplejson

from tally.companies.repository import CompanyRef
from tally.core.instants import format_instant, utcnow
from tally.core.quantities import from_scaled as _from_scaled
from tally.reporting.results import Usage

# Decimals are immutable: long series repeat the same amounts (0 above all).
from_scaled = lru_cache(maxsize=4096)(_from_scaled)
UNITS = ("minutes", "credits")
AMOUNT = {"minutes": "minutesUsed", "credits": "creditsUsed"}
TOTAL = {"minutes": "totalMinutesUsed", "credits": "totalCreditsUsed"}


def company_totals(company: CompanyRef, usage: Usage) -> dict[str, Any]:
    """The fields of one company's interval (SPEC section 2 rules 2, 4-7)."""
    unit = company.billing_system
    amount_field = AMOUNT[unit]
    breakdown = []
    total = 0
    for key, sums in usage.counted():
        amount = sums.amount(unit)
        total += amount
        breakdown.append({"costKey": key, "events": sums.events, amount_field: from_scaled(amount)})
    return {
        TOTAL[unit]: from_scaled(total),
        "totalInterviews": usage.interviews,
        "breakdownByCostKey": breakdown,
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
        # Called once per company and bucket (30,000 times for a platform key's
        # month by day): no sorting (fields() sorts), no method call per key.
        self.interviews += usage.interviews
        if not usage.by_cost_key:
            return
        unit = company.billing_system
        minutes = unit == "minutes"
        per_key = self.per_key
        added = 0
        for key, sums in usage.by_cost_key.items():
            if not sums.events:
                continue
            amount = sums.minutes if minutes else sums.credits
            merged = per_key.get(key)
            if merged is None:
                merged = per_key[key] = {"events": 0} | dict.fromkeys(self.units, 0)
            merged["events"] += sums.events
            merged[unit] += amount
            added += amount
        self.totals[unit] += added

    def fields(self) -> dict[str, Any]:
        breakdown = [
            {"costKey": key, "events": self.per_key[key]["events"]}
            | {AMOUNT[unit]: from_scaled(self.per_key[key][unit]) for unit in self.units}
            for key in sorted(self.per_key)
        ]
        return {
            **{TOTAL[unit]: from_scaled(self.totals[unit]) for unit in self.units},
            "totalInterviews": self.interviews,
            "breakdownByCostKey": breakdown,
        }


def success_json(data: dict[str, Any]) -> bytes:
    """The success envelope around `data`, encoded, byte for byte as EnvelopeResponse writes it.

    For a `data` already in wire form (plain dicts, lists, str, int and
    Decimal): no envelope model is built, validated and dumped again, and the
    encoding can run in the worker thread that computed the data.
    """
    envelope = {
        "success": True,
        "data": data,
        "error": None,
        "timestamp": format_instant(utcnow().replace(microsecond=0)),
    }
    encoded: str = simplejson.dumps(
        envelope, use_decimal=True, ensure_ascii=False, separators=(",", ":")
    )
    return encoded.encode("utf-8")
