"""Changes to the running totals, gathered in memory and applied per request.

Ingestion and voids never touch a totals row one event at a time: they add
the effect of each counted event (or its removal) here, summed per bucket,
and the repository applies the sums in two statements per request inside the
request's transaction, so an accepted event is in the very next query.
"""

import uuid

from tally.usage.buckets import DAY, HOUR, MONTH, floor_day, floor_hour, floor_month

# company, cost key, granularity, bucket start
BucketKey = tuple[uuid.UUID, str, int, int]


class BucketDeltas:
    """Sums of (events, minutes, credits, interviews) to add per bucket."""

    def __init__(self) -> None:
        self.rows: dict[BucketKey, list[int]] = {}
        self._months: dict[int, int] = {}

    def _starts(self, at: int) -> tuple[tuple[int, int], ...]:
        day = floor_day(at)
        month = self._months.get(day)
        if month is None:
            month = self._months[day] = floor_month(day)
        return ((HOUR, floor_hour(at)), (DAY, day), (MONTH, month))

    def _add(
        self, company_id: uuid.UUID, cost_key: str, at: int, delta: tuple[int, int, int, int]
    ) -> None:
        rows = self.rows
        for granularity, start in self._starts(at):
            key = (company_id, cost_key, granularity, start)
            row = rows.get(key)
            if row is None:
                rows[key] = list(delta)
            else:
                row[0] += delta[0]
                row[1] += delta[1]
                row[2] += delta[2]
                row[3] += delta[3]

    def event(
        self, company_id: uuid.UUID, cost_key: str, at: int, minutes: int, credits: int, sign: int
    ) -> None:
        """Count (sign=1) or uncount (sign=-1) one event."""
        self._add(company_id, cost_key, at, (sign, sign * minutes, sign * credits, 0))

    def interview(self, company_id: uuid.UUID, cost_key: str, at: int, sign: int) -> None:
        """Count or uncount an interview whose first counted event is at `at`."""
        self._add(company_id, cost_key, at, (0, 0, 0, sign))

    def changes(self) -> list[tuple[BucketKey, list[int]]]:
        """Non-zero changes, ordered so each period's buckets come oldest first."""
        return sorted((key, sums) for key, sums in self.rows.items() if any(sums))

    def pairs(self) -> list[tuple[uuid.UUID, str]]:
        return sorted({(key[0], key[1]) for key in self.rows})
