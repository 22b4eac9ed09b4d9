"""Rating: the credits of one event under the rule in force.

credits = baseCost + max(0, minutes - includedMinutes) * costPerMinute,
rounded half-even to 6 places. Every amount is an integer of millionths, so
the product of two amounts is in units of 10**-12 and one exact integer
division with half-even rounding brings it back to millionths: no float and
no intermediate rounding anywhere.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from tally.core.quantities import SCALE


@dataclass(frozen=True, slots=True)
class Rule:
    id: uuid.UUID
    cost_key: str
    agent_focus: str | None
    company_id: uuid.UUID | None
    base_cost: int
    included_minutes: int
    cost_per_minute: int
    effective_from: int  # epoch microseconds
    created_seq: int  # creation order, to break ties between same-instant rules


def _round_half_even_div(numerator: int, divisor: int) -> int:
    quotient, remainder = divmod(numerator, divisor)
    twice = 2 * remainder
    if twice > divisor or (twice == divisor and quotient % 2 == 1):
        quotient += 1
    return quotient


def credits_of(rule: Rule, minutes: int) -> int:
    """Credits in millionths for an event of `minutes` millionths of a minute."""
    billable = max(0, minutes - rule.included_minutes)
    return rule.base_cost + _round_half_even_div(billable * rule.cost_per_minute, SCALE)


def _specificity(rule: Rule) -> int:
    """0 = company and focus, 1 = company, 2 = platform and focus, 3 = platform."""
    return (0 if rule.company_id is not None else 2) + (0 if rule.agent_focus else 1)


class RuleBook:
    """The rules of some cost keys, indexed for choosing the one in force."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._by_key: dict[str, list[Rule]] = {}
        for rule in rules:
            self._by_key.setdefault(rule.cost_key, []).append(rule)
        for candidates in self._by_key.values():
            # Latest first within each specificity level.
            candidates.sort(key=lambda r: (_specificity(r), -r.effective_from, -r.created_seq))

    def rule_for(
        self, company_id: uuid.UUID, cost_key: str, agent_focus: str | None, occurred_at: int
    ) -> Rule | None:
        """The most specific rule in force at occurred_at, or None.

        Within the most specific level that has any rule in force, the one
        with the latest effectiveFrom <= occurredAt wins; at equal
        effectiveFrom the one created last wins.
        """
        for rule in self._by_key.get(cost_key, ()):
            if rule.company_id is not None and rule.company_id != company_id:
                continue
            if rule.agent_focus is not None and rule.agent_focus != agent_focus:
                continue
            if rule.effective_from <= occurred_at:
                return rule
        return None
