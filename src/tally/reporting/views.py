"""Typed results -> the JSON text of one interval, per company and across companies.

The text written here is byte for byte what the models of
tally.reporting.schemas dump through the envelope's encoder (same camelCase
keys, same order, unit fields absent rather than null, decimals as plain
numbers); tests/reporting/test_views.py holds it to that. It is written
directly, from the integer sums, because a series of 365 buckets of five cost
keys would otherwise spend most of its time building and encoding thousands
of dicts (or pydantic models), Decimals included.
"""

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

import simplejson

from tally.companies.repository import CompanyRef
from tally.core.instants import format_instant, utcnow
from tally.core.quantities import SCALE
from tally.reporting.results import Usage

UNITS = ("minutes", "credits")
AMOUNT = {"minutes": "minutesUsed", "credits": "creditsUsed"}
TOTAL = {"minutes": "totalMinutesUsed", "credits": "totalCreditsUsed"}


def dumps(value: object) -> str:
    """JSON exactly as the envelope writes it (decimals exact, compact)."""
    return simplejson.dumps(
        value, use_decimal=True, default=str, ensure_ascii=False, separators=(",", ":")
    )


def amount(scaled: int) -> str:
    """Millionths as the JSON number the envelope writes for their Decimal
    (tally.core.quantities.from_scaled): 245500000 -> 245.5, 10000000 -> 10.
    """
    whole, fraction = divmod(abs(scaled), SCALE)
    sign = "-" if scaled < 0 else ""
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:06d}".rstrip("0")


# Long series repeat the same cost keys and instants.
@lru_cache(maxsize=4096)
def string(value: str) -> str:
    """A JSON string literal."""
    return dumps(value)


# Equal aware datetimes hash alike and format alike (always in UTC).
instant = lru_cache(maxsize=16384)(format_instant)


def edges(start: datetime, end: datetime) -> str:
    """The members of an interval's `start` and `end`."""
    return f'"start":"{instant(start)}","end":"{instant(end)}"'


def company_head(company: CompanyRef) -> str:
    """The members naming a company (companyId, companyName, billingSystem)."""
    return (
        f'"companyId":"{company.id}","companyName":{string(company.name)},'
        f'"billingSystem":{string(company.billing_system)}'
    )


# Per unit: the member of a cost key's amount, and the head of the total.
_MEMBER = {unit: f',"{AMOUNT[unit]}":' for unit in UNITS}
_TOTAL = {unit: f'"{TOTAL[unit]}":' for unit in UNITS}


def company_totals(company: CompanyRef, usage: Usage) -> str:
    """The members of one company's interval (SPEC section 2 rules 2, 4-7)."""
    unit = company.billing_system
    minutes = unit == "minutes"
    member = _MEMBER[unit]
    breakdown = []
    total = 0
    for key, sums in usage.counted():
        scaled = sums.minutes if minutes else sums.credits
        total += scaled
        breakdown.append(
            f'{{"costKey":{string(key)},"events":{sums.events}{member}{amount(scaled)}}}'
        )
    return (
        f'{_TOTAL[unit]}{amount(total)},"totalInterviews":{usage.interviews},'
        f'"breakdownByCostKey":[{",".join(breakdown)}]'
    )


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
        """Add one company's usage of the interval."""
        self.add_in(company.billing_system, usage)

    def add_in(self, unit: str, usage: Usage) -> None:
        """Add usage in `unit` (a company's, or companies' of that unit summed)."""
        # Called once per company and bucket (30,000 times for a platform key's
        # month by day): no sorting (fields() sorts), no method call per key.
        self.interviews += usage.interviews
        if not usage.by_cost_key:
            return
        minutes = unit == "minutes"
        per_key = self.per_key
        added = 0
        for key, sums in usage.by_cost_key.items():
            if not sums.events:
                continue
            scaled = sums.minutes if minutes else sums.credits
            merged = per_key.get(key)
            if merged is None:
                merged = per_key[key] = {"events": 0} | dict.fromkeys(self.units, 0)
            merged["events"] += sums.events
            merged[unit] += scaled
            added += scaled
        self.totals[unit] += added

    def fields(self) -> str:
        """The members of the interval's sums (totals, totalInterviews, breakdownByCostKey)."""
        units = self.units
        breakdown = []
        for key in sorted(self.per_key):
            merged = self.per_key[key]
            amounts = "".join(f',"{AMOUNT[unit]}":{amount(merged[unit])}' for unit in units)
            breakdown.append(f'{{"costKey":{string(key)},"events":{merged["events"]}{amounts}}}')
        totals = "".join(f'"{TOTAL[unit]}":{amount(self.totals[unit])},' for unit in units)
        return (
            f'{totals}"totalInterviews":{self.interviews},'
            f'"breakdownByCostKey":[{",".join(breakdown)}]'
        )


def envelope_head() -> str:
    """The success envelope up to its `data` (tally.core.envelope's member order)."""
    return '{"success":true,"data":'


def envelope_tail() -> str:
    """The success envelope after its `data`."""
    return f',"error":null,"timestamp":"{format_instant(utcnow().replace(microsecond=0))}"}}'


def success_json(data: str) -> bytes:
    """The success envelope around `data` (JSON text), byte for byte as EnvelopeResponse
    writes it: no envelope model is built, validated and dumped again, and the
    encoding can run in the worker thread that computed the data.
    """
    return (envelope_head() + data + envelope_tail()).encode("utf-8")
