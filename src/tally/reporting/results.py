"""Typed results of the report computation; routes and the CLI shape them for the wire.

Quantities stay integers of millionths (tally.core.quantities) until a view
renders them, so every sum over buckets, companies or cost keys is exact.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from tally.companies.repository import CompanyRef


@dataclass(slots=True)
class Sums:
    """Counted events of one cost key: their number, minutes and credits (millionths)."""

    events: int = 0
    minutes: int = 0
    credits: int = 0

    def add(self, events: int, minutes: int, credits: int) -> None:
        self.events += events
        self.minutes += minutes
        self.credits += credits

    def amount(self, billing_system: str) -> int:
        """The sum in a company's own unit."""
        return self.minutes if billing_system == "minutes" else self.credits


@dataclass(slots=True)
class Usage:
    """Usage of one company over one interval: per cost key, and interviews first counted."""

    by_cost_key: dict[str, Sums] = field(default_factory=dict)
    interviews: int = 0

    def counted(self) -> list[tuple[str, Sums]]:
        """Cost keys with at least one counted event, by code point."""
        if not self.by_cost_key:
            return []
        return [(key, sums) for key, sums in sorted(self.by_cost_key.items()) if sums.events]


@dataclass(frozen=True, slots=True)
class Interval:
    """[start, end) in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class CompanySeries:
    """One company's usage in each interval of a series, in order."""

    company: CompanyRef
    usage: list[Usage]

    @property
    def company_id(self) -> uuid.UUID:
        return self.company.id
