"""The rule in force for many events at once, for the bulk import.

`RuleBook.rule_for` walks the candidate rules of an event. Which rule it picks
for a (company, cost key, focus) changes only at the instants some rule of
that cost key takes effect, so the import asks it once per such instant and
finds each event's rule by bisection; the credits of a (rule, minutes) pair
are computed once too.
"""

import uuid
from bisect import bisect_right
from collections.abc import Iterable

from sqlalchemy.orm import Session

from tally.core.instants import to_micros
from tally.pricing import repository as rules_repository
from tally.pricing import service as pricing
from tally.pricing.rating import Rule, RuleBook, credits_of

_Timeline = tuple[list[int], list[Rule | None]]


class PriceBook:
    """The rules of some cost keys as loaded once (one chunk's transaction)."""

    def __init__(self, session: Session, cost_keys: Iterable[str]) -> None:
        keys = sorted(set(cost_keys))
        self._book: RuleBook = pricing.rule_book(session, keys)
        self._changes: dict[str, list[int]] = {}
        for row in rules_repository.rules_for_cost_keys(session, keys):
            self._changes.setdefault(row.cost_key, []).append(to_micros(row.effective_from))
        for instants in self._changes.values():
            instants[:] = sorted(set(instants))
        # Keyed by plain ints (the company's UUID as an int, the rule's id()):
        # uuid.UUID hashes in Python, a cost that shows at a million events.
        self._timelines: dict[tuple[int, str, str | None], _Timeline] = {}
        self._credits: dict[tuple[int, int], int] = {}

    def _timeline(self, company_id: uuid.UUID, cost_key: str, focus: str | None) -> _Timeline:
        instants = self._changes.get(cost_key, [])
        rules = [self._book.rule_for(company_id, cost_key, focus, at) for at in instants]
        return instants, rules

    def price(
        self, company_id: uuid.UUID, cost_key: str, focus: str | None, at: int, minutes: int
    ) -> tuple[Rule, int] | None:
        """The rule in force at `at` and the event's credits, or None without a rule."""
        key = (company_id.int, cost_key, focus)
        timeline = self._timelines.get(key)
        if timeline is None:
            timeline = self._timelines[key] = self._timeline(company_id, cost_key, focus)
        instants, rules = timeline
        index = bisect_right(instants, at) - 1
        rule = rules[index] if index >= 0 else None
        if rule is None:
            return None
        amount = self._credits.get((id(rule), minutes))
        if amount is None:
            amount = self._credits[(id(rule), minutes)] = credits_of(rule, minutes)
        return rule, amount
