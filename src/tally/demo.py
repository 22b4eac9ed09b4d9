"""Demo data: realistic partners, companies, prices and thirteen months of usage.

Everything goes through the real services (companies, pricing, ingestion in
batches of at most 1,000, voids, keys), one transaction per batch as the HTTP
API does it, so the demo exercises pricing and the aggregates as production
traffic does, and no transaction holds its companies' write locks for the
whole demo. The random generator is seeded: two runs at the same instant
produce the same data.
"""

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tally.auth import admin as keys_admin
from tally.auth.schemas import KeyIn
from tally.companies import repository as company_refs
from tally.companies import service as companies
from tally.companies.models import AtsIntegration, Company
from tally.companies.schemas import AtsIn, BillingSystem, CompanyIn
from tally.core.instants import format_instant, utcnow
from tally.core.quantities import SCALE
from tally.db.engine import Database
from tally.plans import repository as plans_repository
from tally.plans import service as plans
from tally.plans.schemas import PlanIn
from tally.plans.usage import used_by_company
from tally.pricing import service as pricing
from tally.pricing.models import PricingRule
from tally.pricing.schemas import RuleIn
from tally.usage import ingest

T = TypeVar("T")
SEED = 20260131
SPANS = 13  # thirteen months of history, as thirteen equal spans up to now
SPAN = timedelta(days=30.44)
BATCH = 1000
FOCI = ("SCREENING", "OUTREACH", "LANGUAGE_TEST", "GENERIC", None)
# Total interview length in seconds, by focus (None: the engine sent no focus).
DURATION = {
    "SCREENING": (900, 2100),
    "OUTREACH": (180, 600),
    "LANGUAGE_TEST": (1200, 2400),
    "GENERIC": (600, 2700),
    None: (600, 1800),
}
TEST_SHARE = 0.03  # interviews run by recruiters trying the product
LATE_SHARE = 0.04  # interviews whose enrichments and reports arrive weeks late
LOST_SHARE = 0.01  # interviews reported entirely late (an engine region was offline)
VOID_SHARE = 0.012  # segments voided by support (double-reported reconnects)
CANCEL_SHARE = 0.004  # interviews voided entirely

ATS_PARTNERS = ("Greenhouse", "Lever", "Ashby")
DEMO_COMPANY = "Globex"
DEMO_ATS = "Greenhouse"


@dataclass(frozen=True)
class CompanySpec:
    name: str
    billing: BillingSystem
    ats: str | None
    monthly: int  # interviews a month at the start of the history
    foci: tuple[int, int, int, int, int]  # weights of FOCI
    active: range = range(SPANS)  # spans (0 = oldest) in which it interviews


COMPANIES = (
    CompanySpec("Acme Corp", "minutes", "Greenhouse", 60, (6, 2, 1, 2, 1)),
    CompanySpec("Globex", "credits", "Greenhouse", 45, (5, 3, 1, 1, 0)),
    CompanySpec("Initech", "credits", "Greenhouse", 25, (3, 1, 0, 4, 1)),
    CompanySpec("Umbrella Health", "minutes", "Greenhouse", 20, (4, 0, 3, 1, 0)),
    CompanySpec("Stark Industries", "credits", "Lever", 50, (4, 2, 3, 1, 0)),
    CompanySpec("Wayne Enterprises", "minutes", "Lever", 30, (3, 3, 0, 2, 1)),
    CompanySpec("Hooli", "credits", "Lever", 35, (5, 4, 0, 1, 0), range(6, SPANS)),
    CompanySpec("Vandelay Imports", "minutes", "Lever", 12, (2, 1, 0, 3, 2), range(0, 9)),
    CompanySpec("Pied Piper", "credits", "Ashby", 18, (4, 1, 1, 2, 0)),
    CompanySpec("Soylent", "minutes", "Ashby", 15, (2, 2, 2, 2, 1)),
    CompanySpec("Wonka Foods", "minutes", None, 22, (3, 1, 2, 1, 1)),
    CompanySpec("Tyrell Systems", "credits", None, 28, (2, 1, 4, 1, 0)),
    CompanySpec("Cyberdyne", "credits", None, 16, (4, 2, 0, 2, 0)),
    CompanySpec("Massive Dynamic", "minutes", None, 10, (1, 1, 1, 1, 1)),
    CompanySpec("Øresund Logistik", "credits", None, 14, (2, 1, 3, 1, 0)),
)


@dataclass
class Stats:
    interviews: int = 0
    test_interviews: int = 0
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    voided: int = 0


@dataclass
class World:
    now: datetime
    ats: dict[str, uuid.UUID] = field(default_factory=dict)
    companies: dict[str, uuid.UUID] = field(default_factory=dict)
    rules: int = 0


@dataclass
class Interview:
    events: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    extras: list[dict[str, Any]]  # enrichments and reports, not the minutes


def existing_data(database: Database) -> dict[str, int]:
    """The companies, ATS integrations and pricing rules the database holds, if any."""
    tables = {
        "companies": Company,
        "ATS integrations": AtsIntegration,
        "pricing rules": PricingRule,
    }
    with database.transaction(write=False) as session:
        counts = {
            label: session.scalar(select(func.count()).select_from(model)) or 0
            for label, model in tables.items()
        }
    return {label: count for label, count in counts.items() if count}


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(80):020x}"


def _create_world(session: Session, rng: random.Random, now: datetime) -> World:
    world = World(now=now)
    for name in ATS_PARTNERS:
        world.ats[name] = companies.create_ats(session, AtsIn(name=name), now).id
    for spec in COMPANIES:
        body = CompanyIn(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            name=spec.name,
            billing_system=spec.billing,
            ats_integration_id=world.ats[spec.ats] if spec.ats else None,
        )
        world.companies[spec.name] = companies.create_company(session, body, now).id
    for rule in _rules(world):
        pricing.create_rule(session, RuleIn.model_validate(rule), now)
        world.rules += 1
    return world


def _rules(world: World) -> list[dict[str, Any]]:
    """Platform prices from before the history, a price change and two overrides."""
    start = world.now - SPAN * (SPANS + 1)
    change = world.now - SPAN * 6
    platform = [
        ("interview_minutes", None, "2", "5", "0.4", start),
        ("interview_minutes", "SCREENING", "5", "10", "0.5", start),
        ("interview_minutes", "OUTREACH", "1", "0", "0.25", start),
        ("interview_minutes", "LANGUAGE_TEST", "3", "15", "0.6", start),
        ("interview_minutes", "GENERIC", "2", "5", "0.4", start),
        ("sourcing_enrichment", None, "1", "0", "0", start),
        ("candidate_report", None, "0.75", "0", "0", start),
        # Six months ago screening got dearer and enrichment cheaper.
        ("interview_minutes", "SCREENING", "5.5", "10", "0.55", change),
        ("sourcing_enrichment", None, "0.8", "0", "0", change),
    ]
    rules: list[dict[str, Any]] = [
        {
            "costKey": key,
            "agentFocus": focus,
            "baseCost": Decimal(base),
            "includedMinutes": Decimal(included),
            "costPerMinute": Decimal(per_minute),
            "effectiveFrom": effective,
        }
        for key, focus, base, included, per_minute, effective in platform
    ]
    # Globex negotiated a flat interview price for every focus; Stark Industries
    # a cheaper language test. Both from the start of their contracts.
    overrides = [
        ("Globex", "interview_minutes", None, "3", "10", "0.35"),
        ("Stark Industries", "interview_minutes", "LANGUAGE_TEST", "2", "20", "0.45"),
    ]
    for name, key, focus, base, included, per_minute in overrides:
        rules.append(
            {
                "costKey": key,
                "agentFocus": focus,
                "companyId": world.companies[name],
                "baseCost": Decimal(base),
                "includedMinutes": Decimal(included),
                "costPerMinute": Decimal(per_minute),
                "effectiveFrom": start,
            }
        )
    return rules


def _minutes(seconds: int) -> Decimal:
    return (Decimal(seconds) / 60).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def _event(
    rng: random.Random, base: dict[str, Any], cost_key: str, at: datetime, minutes: Decimal
) -> dict[str, Any]:
    event = base | {"id": _id(rng, "evt"), "costKey": cost_key, "occurredAt": format_instant(at)}
    if minutes:
        event["minutes"] = minutes
    return event


def _interview(
    rng: random.Random, company_id: uuid.UUID, focus: str | None, start: datetime, is_test: bool
) -> Interview:
    """An interview's events: enrichments before it, minute segments, a report after."""
    base: dict[str, Any] = {"companyId": str(company_id), "interviewId": _id(rng, "int")}
    if focus is not None:
        base["agentFocus"] = focus
    if is_test:
        base["isTest"] = True
    extras: list[dict[str, Any]] = []
    if focus in ("SCREENING", "OUTREACH"):
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            at = start - timedelta(minutes=rng.randint(5, 600))
            extras.append(_event(rng, base, "sourcing_enrichment", at, Decimal(0)))
    segments: list[dict[str, Any]] = []
    remaining = rng.randint(*DURATION[focus])
    at = start
    for left in range(rng.choice((1, 2, 2, 3, 4)), 0, -1):
        seconds = (
            remaining if left == 1 else rng.randint(remaining // (left + 1), remaining // left)
        )
        segments.append(_event(rng, base, "interview_minutes", at, _minutes(seconds)))
        remaining -= seconds
        at += timedelta(seconds=seconds + rng.randint(5, 90))  # reconnect gap
    if focus != "OUTREACH" and rng.random() < 0.8:
        at += timedelta(minutes=rng.randint(1, 10))
        extras.append(_event(rng, base, "candidate_report", at, Decimal(0)))
    return Interview(events=[*extras, *segments], segments=segments, extras=extras)


def _start_time(rng: random.Random, low: datetime, high: datetime) -> datetime:
    """A random instant up to `high`, mostly on weekdays and in working hours (UTC).

    Always three draws, never a retry loop: the stream of random numbers, and so
    every id, focus and duration, is the same whatever day the demo runs.
    """
    at, weekend, night = low + (high - low) * rng.random(), rng.random(), rng.random()
    if at.weekday() >= 5 and weekend < 0.8:
        at -= timedelta(days=at.weekday() - 4)  # moved to the Friday before
    if not 7 <= at.hour < 20 and night < 0.9:
        at = at.replace(hour=7 + at.hour % 13)
    return min(at, high)


def _history(rng: random.Random, world: World) -> Iterator[tuple[Interview, bool]]:
    """Every interview of the history, each with whether it is a test interview."""
    latest = world.now - timedelta(hours=2)  # every event of it is in the past
    for spec in COMPANIES:
        company_id = world.companies[spec.name]
        for span in spec.active:
            low = world.now - SPAN * (SPANS - span)
            high = min(low + SPAN, latest)
            count = round(spec.monthly * 1.04**span * rng.uniform(0.85, 1.15))
            for _ in range(count):
                focus = rng.choices(FOCI, weights=spec.foci)[0]
                is_test = rng.random() < TEST_SHARE
                start = _start_time(rng, low, high)
                yield _interview(rng, company_id, focus, start, is_test), is_test


@dataclass
class Plan:
    """Events in the order they are sent, and the ones support voids afterwards."""

    on_time: list[dict[str, Any]] = field(default_factory=list)
    late: list[dict[str, Any]] = field(default_factory=list)
    voids: list[str] = field(default_factory=list)


def _plan(rng: random.Random, world: World, stats: Stats) -> Plan:
    plan = Plan()
    recent = world.now - timedelta(days=14)
    for interview, is_test in _history(rng, world):
        stats.interviews += 1
        stats.test_interviews += is_test
        first = min(event["occurredAt"] for event in interview.events)
        old = first < format_instant(recent)
        draw = rng.random()
        if old and draw < LOST_SHARE:
            plan.late.extend(interview.events)
        elif old and draw < LOST_SHARE + LATE_SHARE and interview.extras:
            plan.late.extend(interview.extras)
            plan.on_time.extend(interview.segments)
        else:
            plan.on_time.extend(interview.events)
        if is_test:
            continue
        if rng.random() < CANCEL_SHARE:
            plan.voids.extend(event["id"] for event in interview.events)
        else:
            plan.voids.extend(e["id"] for e in interview.segments if rng.random() < VOID_SHARE)
    # The engine reports in time order; the late ones come after all of it.
    plan.on_time.sort(key=lambda event: event["occurredAt"])
    rng.shuffle(plan.late)
    stats.late = len(plan.late)
    return plan


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for offset in range(0, len(items), BATCH):
        yield items[offset : offset + BATCH]


def _send(database: Database, events: Sequence[dict[str, Any]], stats: Stats) -> None:
    with database.transaction(write=True) as session:
        result = ingest.ingest(session, {"events": list(events)}, utcnow())
    stats.batches += 1
    stats.accepted += result.accepted
    stats.duplicates += result.duplicates


def _ingest(database: Database, plan: Plan, stats: Stats) -> None:
    on_time = list(_batches(plan.on_time))
    for batch in [*on_time, *_batches(plan.late)]:
        _send(database, batch, stats)
    # A request that timed out, retried by the engine: every event is a duplicate.
    _send(database, on_time[-1], stats)
    for part in _batches(plan.voids):
        with database.transaction(write=True) as session:
            for event_id in part:
                ingest.void(session, event_id, utcnow())
        stats.voided += len(part)


# Plans sized from the current period's usage: (company, share of the allowance
# used, period, zone). One past 80 %, one exceeded, one comfortably within.
PLANS = (
    ("Globex", Decimal("0.85"), "Europe/Berlin"),
    ("Acme Corp", Decimal("1.25"), "UTC"),
    ("Stark Industries", Decimal("0.40"), "America/New_York"),
)


def _plans(database: Database, world: World) -> list[str]:
    """Give a few companies a monthly plan, sized so the demo shows every status."""
    # Anchored about three weeks back, so the current period has usage.
    anchor = min((world.now - timedelta(days=20)).day, 28)
    lines = []
    with database.transaction(write=True) as session:
        for name, share, zone in PLANS:
            company_id = world.companies[name]
            body = PlanIn.parse(
                {"allowance": 1, "period": "month", "anchorDay": anchor, "timeZone": zone}
            )
            plans.put_plan(session, company_id, body, world.now)
            plan = plans_repository.get_plan(session, company_id)
            assert plan is not None
            window = plans.window_of(plan, world.now)
            ref = company_refs.company_ref(session, company_id)
            assert ref is not None
            used = used_by_company(session, [ref], window.start, world.now)[company_id]
            allowance = max(SCALE, int(Decimal(used) / share) // SCALE * SCALE)
            plan.allowance = allowance
            percent = Decimal(used * 100) / allowance
            lines.append(f"{name} {percent:.0f} % of {allowance // SCALE:,} {ref.billing_system}")
    return lines


@dataclass(frozen=True)
class DemoKeys:
    company: str
    ats: str
    platform: str


def _keys(database: Database, world: World) -> DemoKeys:
    bodies = [
        {
            "name": f"demo: {DEMO_COMPANY} billing dashboard",
            "kind": "company",
            "companyId": world.companies[DEMO_COMPANY],
            "scopes": ["read:billing"],
        },
        {
            "name": f"demo: {DEMO_ATS} partner",
            "kind": "ats",
            "atsIntegrationId": world.ats[DEMO_ATS],
            "scopes": ["read:billing"],
        },
        {
            "name": "demo: platform operator",
            "kind": "platform",
            "scopes": ["admin", "write:usage", "read:billing"],
        },
    ]
    with database.transaction(write=True) as session:
        raw = [keys_admin.create_key(session, KeyIn.model_validate(b), utcnow())[1] for b in bodies]
    return DemoKeys(*raw)


def _base_url(host: str, port: int) -> str:
    # A wildcard bind address is not one a client can connect to.
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _report(
    out: Console,
    url: str,
    world: World,
    stats: Stats,
    keys: DemoKeys,
    base_url: str,
    plan_lines: list[str],
) -> None:
    managed = sum(1 for spec in COMPANIES if spec.ats == DEMO_ATS)
    billing = next(spec.billing for spec in COMPANIES if spec.name == DEMO_COMPANY)
    out.print(f"[bold]tally demo data[/bold] written to {escape(url)}")
    out.print(
        f"  {len(world.ats)} ATS partners ({', '.join(ATS_PARTNERS)}), "
        f"{len(world.companies)} companies, {world.rules} pricing rules"
    )
    out.print(
        f"  {stats.interviews:,} interviews ({stats.test_interviews:,} test) over {SPANS} months: "
        f"{stats.accepted:,} events in {stats.batches} batches, {stats.late:,} of them sent late, "
        f"{stats.duplicates:,} duplicates from a retried batch, {stats.voided:,} voided"
    )
    out.print(f"  plans (monthly, GET /billing/allowance): {'; '.join(plan_lines)}")
    out.print("\n[bold]API keys[/bold] (shown only now; tally stores only their hashes)")
    out.print(f"  company key:  {keys.company}  ({DEMO_COMPANY}, bills in {billing})")
    out.print(f"  ATS key:      {keys.ats}  ({DEMO_ATS}, manages {managed} companies)")
    out.print(f"  platform key: {keys.platform}  (scopes admin, write:usage, read:billing)")
    out.print(f"\n[bold]Try it[/bold] (the last 30 days of {DEMO_COMPANY}):")
    out.print(
        f'  curl -s -H "Authorization: Bearer {keys.company}" "{base_url}/billing/usage"',
        markup=False,
    )
    out.print(f"  or open {base_url}/dashboard and paste one of the keys", markup=False)


def run_demo(database_url: str, host: str, port: int) -> bool:
    """Fill an empty database with demo data and print a key of each kind.

    Returns False, having touched nothing, when the database already has
    companies, ATS integrations or pricing rules (API keys alone do not count).
    """
    shown_url = make_url(database_url).render_as_string(hide_password=True)
    database = Database(database_url)
    try:
        found = existing_data(database)
        if found:
            err = Console(stderr=True, soft_wrap=True, highlight=False)
            err.print(
                f"[red]the database at {escape(shown_url)} already has data[/red] "
                f"({', '.join(f'{count} {label}' for label, count in found.items())}); "
                "demo data goes only into an empty database. Point TALLY_DATABASE_URL "
                "at a new one, e.g. TALLY_DATABASE_URL=sqlite:///demo.db"
            )
            return False
        rng = random.Random(SEED)
        now = utcnow()
        stats = Stats()
        with database.transaction(write=True) as session:
            world = _create_world(session, rng, now)
        _ingest(database, _plan(rng, world, stats), stats)
        plan_lines = _plans(database, world)
        keys = _keys(database, world)
    finally:
        database.dispose()
    out = Console(soft_wrap=True, highlight=False)
    _report(out, shown_url, world, stats, keys, _base_url(host, port), plan_lines)
    return True
