"""A reproducible synthetic history: partners, companies, prices and usage events.

Everything derives from one seed, so two runs with the same seed and size
produce the same companies, rules and events (ids included); only the
anchor instant `now` moves the whole history in time.
"""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

COST_KEYS = (
    "interview_minutes",
    "sourcing_enrichment",
    "language_assessment",
    "outreach_message",
    "profile_scoring",
)
FOCUSES = ("SCREENING", "OUTREACH", "LANGUAGE_TEST", "GENERIC")
HISTORY_DAYS = 395  # thirteen months
TEST_SHARE = 0.03
VOID_SHARE = 0.01
LATE_SHARE = 0.005
# A company has exactly one partner, so 1,000 companies hold one partner of
# 500 (Q4) and ten partners of 50 (Q3); see bench/README.md.
BIG_ATS_COMPANIES = 500
SMALL_ATS = 10
SMALL_ATS_COMPANIES = 50
COMPANIES = BIG_ATS_COMPANIES + SMALL_ATS * SMALL_ATS_COMPANIES


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class World:
    """Partners, companies and rules; events are streamed separately."""

    ats: list[dict[str, Any]] = field(default_factory=list)
    companies: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def big_ats(self) -> str:
        return str(self.ats[0]["id"])

    def companies_of(self, ats_id: str) -> list[str]:
        return [c["id"] for c in self.companies if c["atsIntegrationId"] == ats_id]


def build_world(seed: int, now: datetime) -> World:
    rng = random.Random(seed)
    world = World()
    world.ats = [{"id": _uuid(rng), "name": f"Partner {n:02d}"} for n in range(1 + SMALL_ATS)]
    for index in range(COMPANIES):
        owner = 0 if index < BIG_ATS_COMPANIES else 1 + (index - BIG_ATS_COMPANIES) // 50
        world.companies.append(
            {
                "id": _uuid(rng),
                "name": f"Company {index:04d}",
                "billingSystem": "credits" if index % 2 else "minutes",
                "atsIntegrationId": world.ats[owner]["id"],
            }
        )
    world.rules = _rules(world, now)
    return world


def _rules(world: World, now: datetime) -> list[dict[str, Any]]:
    start = (now - timedelta(days=HISTORY_DAYS + 30)).isoformat()
    change = (now - timedelta(days=HISTORY_DAYS // 2)).isoformat()
    rules = [
        {
            "costKey": key,
            "baseCost": 1,
            "includedMinutes": 0,
            "costPerMinute": 0,
            "effectiveFrom": start,
        }
        for key in COST_KEYS
    ]
    rules += [
        {
            "costKey": "interview_minutes",
            "agentFocus": focus,
            "baseCost": 2 + n,
            "includedMinutes": 5,
            "costPerMinute": Decimal("0.25"),
            "effectiveFrom": start,
        }
        for n, focus in enumerate(FOCUSES)
    ]
    rules.append(
        {
            "costKey": "interview_minutes",
            "baseCost": 3,
            "includedMinutes": 5,
            "costPerMinute": Decimal("0.3"),
            "effectiveFrom": change,
        }
    )
    for company in world.companies[1::50]:
        rules.append(
            {
                "costKey": "interview_minutes",
                "companyId": company["id"],
                "baseCost": 1,
                "includedMinutes": 0,
                "costPerMinute": Decimal("0.1"),
                "effectiveFrom": start,
            }
        )
    return rules


def _interview(
    rng: random.Random, world: World, serial: int, day: datetime, prefix: str = ""
) -> list[dict[str, Any]]:
    company = world.companies[rng.randrange(COMPANIES)]["id"]
    interview_id = f"{prefix}iv-{serial}"
    is_test = rng.random() < TEST_SHARE
    focus = rng.choice(FOCUSES)
    at = day + timedelta(seconds=rng.randrange(86400), microseconds=rng.randrange(1_000_000))
    events = []
    for part in range(rng.randint(2, 6)):
        cost_key = "interview_minutes" if part < 2 else rng.choice(COST_KEYS)
        events.append(
            {
                "id": f"{prefix}ev-{serial}-{part}",
                "companyId": company,
                "costKey": cost_key,
                "occurredAt": at.isoformat(),
                "minutes": round(rng.uniform(0.5, 45), 2) if cost_key == "interview_minutes" else 0,
                "interviewId": interview_id,
                "isTest": is_test,
                "agentFocus": focus,
            }
        )
        at += timedelta(minutes=rng.randint(1, 30), seconds=rng.randrange(60))
    return events


class EventStream:
    """About `total` events in time order, with a share of late arrivals.

    While streaming it picks the ids to void afterwards (`voids`). `prefix`
    makes every event and interview id new (fresh traffic for a database that
    already holds the history of the same seed); `days` shortens the history
    to the last days before `now` (live traffic rather than a backfill).
    """

    def __init__(
        self,
        seed: int,
        world: World,
        total: int,
        now: datetime,
        prefix: str = "",
        days: int = HISTORY_DAYS,
    ) -> None:
        self.rng = random.Random(seed + 1)
        self.world = world
        self.total = total
        self.now = now
        self.prefix = prefix
        self.days = days
        self.voids: list[str] = []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        per_day = self.total / self.days
        first_day = (self.now - timedelta(days=self.days)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        latest = self.now - timedelta(hours=3)
        late: list[dict[str, Any]] = []
        emitted = 0
        serial = 0
        for day_number in range(self.days):
            day = first_day + timedelta(days=day_number)
            day_events: list[dict[str, Any]] = []
            while emitted + len(day_events) < per_day * (day_number + 1):
                serial += 1
                day_events.extend(
                    e
                    for e in _interview(rng, self.world, serial, day, self.prefix)
                    if datetime.fromisoformat(e["occurredAt"]) < latest
                )
            day_events.sort(key=lambda e: e["occurredAt"])
            for item in day_events:
                if rng.random() < VOID_SHARE:
                    self.voids.append(item["id"])
                if rng.random() < LATE_SHARE:
                    late.append(item)
                else:
                    yield item
            emitted += len(day_events)
            # Late events arrive weeks later, landing in months already closed.
            if day_number % 30 == 29:
                yield from late
                late = []
        yield from late
