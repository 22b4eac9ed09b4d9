"""Deltas to the usage buckets, gathered in memory and applied in one upsert.

Ingestion and voids never touch a bucket row one event at a time: they add
the effect of each counted event (or its removal) here, and apply the sums
with one INSERT ... ON CONFLICT DO UPDATE per request, inside the request's
transaction, so an accepted event is in the very next query.
"""

import uuid
from dataclasses import dataclass, field

from tally.usage.buckets import bucket_starts

BucketKey = tuple[uuid.UUID, int, int, str]  # company, granularity, start, cost key


@dataclass
class BucketDeltas:
    rows: dict[BucketKey, list[int]] = field(default_factory=dict)

    def _add(self, company_id: uuid.UUID, cost_key: str, at: int, delta: tuple[int, ...]) -> None:
        for granularity, start in bucket_starts(at):
            row = self.rows.setdefault((company_id, granularity, start, cost_key), [0, 0, 0, 0])
            for position, amount in enumerate(delta):
                row[position] += amount

    def event(
        self, company_id: uuid.UUID, cost_key: str, at: int, minutes: int, credits: int, sign: int
    ) -> None:
        """Count (sign=1) or uncount (sign=-1) one event."""
        self._add(company_id, cost_key, at, (sign, sign * minutes, sign * credits, 0))

    def interview(self, company_id: uuid.UUID, cost_key: str, at: int, sign: int) -> None:
        """Count or uncount an interview whose first counted event is at `at`."""
        self._add(company_id, cost_key, at, (0, 0, 0, sign))

    def as_rows(self) -> list[dict[str, object]]:
        return [
            {
                "company_id": company_id,
                "granularity": granularity,
                "bucket_start": start,
                "cost_key": cost_key,
                "events": events,
                "minutes": minutes,
                "credits": credits,
                "interviews": interviews,
            }
            for (company_id, granularity, start, cost_key), (
                events,
                minutes,
                credits,
                interviews,
            ) in self.rows.items()
            if events or minutes or credits or interviews
        ]
