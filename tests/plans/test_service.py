"""The allowance at chosen instants: anchors, zones, month ends and the projection."""

import uuid
from datetime import datetime
from decimal import Decimal

from tally.auth.principal import Principal
from tally.auth.scopes import KeyKind, Scope
from tally.core.instants import format_instant
from tally.db.engine import Database
from tally.plans import service
from tally.usage import ingest
from tests.factories import Api, event
from tests.plans.helpers import plan

OPERATOR = Principal(
    key_id=uuid.uuid4(),
    kind=KeyKind.PLATFORM,
    scopes=frozenset({Scope.READ_BILLING}),
    company_id=None,
    ats_integration_id=None,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def send(db: Database, now: datetime, *events: dict) -> None:
    with db.transaction(write=True) as session:
        ingest.ingest(session, {"events": list(events)}, now)


def standing(db: Database, now: datetime):
    with db.transaction(write=False) as session:
        (entry,) = service.allowances(session, OPERATOR, None, now).companies
    return entry


def test_anchor_28_over_february_with_its_projection(api: Api, db: Database):
    company = api.company()
    plan(api, company, allowance=40, anchorDay=28)
    now = at("2026-02-20T12:00:00Z")
    send(
        db,
        now,
        event(company, occurredAt="2026-01-27T23:59:59.999999Z", minutes=100),
        event(company, occurredAt="2026-01-28T00:00:00Z", minutes=10),
        event(company, occurredAt="2026-02-20T11:59:59Z", minutes=5),
        event(company, occurredAt="2026-02-20T12:00:00Z", minutes=7),
    )
    entry = standing(db, now)
    assert (entry.period_start, entry.period_end) == (
        at("2026-01-28T00:00:00Z"),
        at("2026-02-28T00:00:00Z"),
    )
    assert entry.used == 15
    assert entry.percent_used == Decimal("37.5")
    # 15 over 23.5 of 31 days: 19.7872340425... to six places.
    assert entry.projected_used == Decimal("19.787234")
    assert entry.crossed_thresholds == []
    later = standing(db, at("2026-02-28T00:00:00Z"))
    assert (later.period_start, later.period_end) == (
        at("2026-02-28T00:00:00Z"),
        at("2026-03-28T00:00:00Z"),
    )
    assert later.used == later.projected_used == 0


def test_the_period_starts_at_local_midnight_of_the_plan_zone(api: Api, db: Database):
    company = api.company()
    plan(api, company, allowance=10, anchorDay=15, timeZone="Europe/Berlin", thresholds=[50, 100])
    now = at("2026-11-14T23:30:00Z")  # already the 15th in Berlin
    send(
        db,
        now,
        event(company, occurredAt="2026-11-14T22:59:00Z", minutes=4),
        event(company, occurredAt="2026-11-15T00:10:00+01:00", minutes=6),
    )
    entry = standing(db, now)
    assert format_instant(entry.period_start) == "2026-11-14T23:00:00Z"
    assert format_instant(entry.period_end) == "2026-12-14T23:00:00Z"
    assert (entry.used, entry.remaining, entry.percent_used) == (6, 4, 60)
    assert entry.crossed_thresholds == [50]
    # 6 in 30 of the period's 43,200 minutes.
    assert entry.projected_used == 6 * 43200 / 30


def test_a_yearly_plan_in_a_half_hour_zone(api: Api, db: Database):
    company = api.company(billing="credits")
    api.rule(costKey="interview_minutes", baseCost=1, effectiveFrom="2000-01-01")
    plan(api, company, allowance=3, period="year", anchorMonth=4, timeZone="Asia/Kolkata")
    now = at("2026-11-30T00:00:00Z")
    send(
        db,
        now,
        event(company, occurredAt="2026-03-31T18:29:59Z"),
        *(event(company, occurredAt="2026-03-31T18:30:00Z") for _ in range(4)),
    )
    entry = standing(db, now)
    assert format_instant(entry.period_start) == "2026-03-31T18:30:00Z"
    assert format_instant(entry.period_end) == "2027-03-31T18:30:00Z"
    assert (entry.unit, entry.used, entry.remaining) == ("credits", 4, -1)
    assert entry.percent_used == Decimal("133.33")
    assert entry.status == "exceeded"
    assert entry.crossed_thresholds == [80, 100]
