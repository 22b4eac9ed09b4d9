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
    # Round the whole sum once: half-even is not shift-invariant, so rounding
    # the product alone and adding the base would differ on exact halves.
    exact = rule.base_cost * SCALE + billable * rule.cost_per_minute
    return _round_half_even_div(exact, SCALE)


def _specificity(rule: Rule) -> int:
    """0 = company and focus, 1 = company, 2 = platform and focus, 3 = platform."""
    return (0 if rule.company_id is not None else 2) + (0 if rule.agent_focus else 1)


class RuleBook:
    """The rules of some cost keys, indexed for choosing the one in force."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        # (cost key, company or None) -> rules, most specific and latest first.
        self._lists: dict[tuple[str, uuid.UUID | None], list[Rule]] = {}
        for rule in rules:
            self._lists.setdefault((rule.cost_key, rule.company_id), []).append(rule)
        for candidates in self._lists.values():
            candidates.sort(
                key=lambda r: (_specificity(r), -r.effective_from, -r.created_seq, str(r.id)),
            )

    def rule_for(
        self, company_id: uuid.UUID, cost_key: str, agent_focus: str | None, occurred_at: int
    ) -> Rule | None:
        """The most specific rule in force at occurred_at, or None.

        Levels, most specific first: company and focus, company, platform and
        focus, platform. Within the first level that has a rule in force, the
        one with the latest effectiveFrom <= occurredAt wins; at equal
        effectiveFrom the one created last wins.
        """
        for owner in (company_id, None):
            for rule in self._lists.get((cost_key, owner), ()):
                if rule.agent_focus is not None and rule.agent_focus != agent_focus:
                    continue
                if rule.effective_from <= occurred_at:
                    return rule
        return None
