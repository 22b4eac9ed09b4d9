"""Changes to the running totals, gathered in memory and applied per request.

Ingestion and voids never touch a totals row one event at a time: they add
the effect of each counted event (or its removal) here, summed per UTC hour,
and the repository appends the hourly sums to usage_deltas inside the
request's transaction (one executemany), so an accepted event is in the very
next query. The folder (tally.usage.fold) later moves them into the running
totals, where each hour's sum also changes its day and its month
(`changes`).
"""

import uuid

from tally.usage.buckets import DAY, HOUR, MONTH, floor_day, floor_hour, floor_month

# company, cost key, granularity, bucket start
BucketKey = tuple[uuid.UUID, str, int, int]
# company, cost key, hour start
HourKey = tuple[uuid.UUID, str, int]


class BucketDeltas:
    """Sums of (events, minutes, credits, interviews) to add per hour."""

    def __init__(self) -> None:
        self.hours: dict[HourKey, list[int]] = {}

    def add(self, key: HourKey, delta: tuple[int, ...] | list[int]) -> None:
        """Add sums to an hour (`key[2]` must be an hour start)."""
        row = self.hours.get(key)
        if row is None:
            self.hours[key] = list(delta)
        else:
            row[0] += delta[0]
            row[1] += delta[1]
            row[2] += delta[2]
            row[3] += delta[3]

    def event(
        self, company_id: uuid.UUID, cost_key: str, at: int, minutes: int, credits: int, sign: int
    ) -> None:
        """Count (sign=1) or uncount (sign=-1) one event."""
        self.add((company_id, cost_key, floor_hour(at)), (sign, sign * minutes, sign * credits, 0))

    def interview(self, company_id: uuid.UUID, cost_key: str, at: int, sign: int) -> None:
        """Count or uncount an interview whose first counted event is at `at`."""
        self.add((company_id, cost_key, floor_hour(at)), (0, 0, 0, sign))

    def hour_rows(self) -> list[tuple[HourKey, list[int]]]:
        """Non-zero hourly sums (appends need no order)."""
        return [(key, sums) for key, sums in self.hours.items() if any(sums)]

    def changes(self) -> list[tuple[BucketKey, list[int]]]:
        """Non-zero changes at every granularity, ordered so each period's
        buckets come oldest first."""
        rows: dict[BucketKey, list[int]] = {}
        months: dict[int, int] = {}
        for (company_id, cost_key, hour), sums in self.hours.items():
            day = floor_day(hour)
            month = months.get(day)
            if month is None:
                month = months[day] = floor_month(day)
            for granularity, start in ((HOUR, hour), (DAY, day), (MONTH, month)):
                key = (company_id, cost_key, granularity, start)
                row = rows.get(key)
                if row is None:
                    rows[key] = list(sums)
                else:
                    for index in range(4):
                        row[index] += sums[index]
        found = [(key, sums) for key, sums in rows.items() if any(sums)]
        # By the UUID's integer: the same order, without Python-level UUID comparisons.
        found.sort(key=lambda item: (item[0][0].int, *item[0][1:]))
        return found

    def pairs(self) -> list[tuple[uuid.UUID, str]]:
        return sorted({(key[0], key[1]) for key in self.hours}, key=lambda p: (p[0].int, p[1]))

    def __bool__(self) -> bool:
        return any(any(sums) for sums in self.hours.values())
