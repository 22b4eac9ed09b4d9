"""Properties of GET /billing/usage over random histories, against tests/usage/reference.py.

Each example builds a random world through the HTTP API: companies on both
billing systems (some managed by an ATS), pricing rules with company
overrides, focus rules and mid-history price changes, then batches of events
with test events, duplicates spelled differently, late events, events
without an interview and voids (often of an interview's first event). The
database is wiped at the start of every example.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tally.db.engine import Database
from tally.usage.models import UsageEvent
from tally.usage.verify import find_mismatches
from tests.conftest import wipe
from tests.factories import Api
from tests.usage import reference

MICRO = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EARLIEST = datetime(2025, 1, 1, tzinfo=UTC)
LATEST_START = datetime(2025, 12, 1, tzinfo=UTC)  # interviews begin before this...
HORIZON = LATEST_START + 45 * DAY  # ...and end before this
RULES_SINCE = "2020-01-01T00:00:00Z"

# "a1" < "a_b" < "ab" by code points; a locale collation would say otherwise.
COST_KEYS = ("interview_minutes", "sourcing_enrichment", "a1", "a_b", "ab")
FOCUSES = (None, "SCREENING", "OUTREACH")
BILLING = ("minutes", "credits")
# Duplicated names force the tie-break by id; "Zeta" < "acme corp" < "Émile SA".
NAMES = ("Acme Corp", "acme corp", "Zeta", "Zeta", "Émile SA", "Globex")
OFFSETS = (
    timedelta(0),
    timedelta(hours=5, minutes=30),
    timedelta(hours=-1),
    timedelta(hours=5, minutes=45),
    timedelta(hours=-9, minutes=-30),
    timedelta(hours=14),
)
NUDGES = (timedelta(0), MICRO, -MICRO, timedelta(seconds=1), -timedelta(seconds=1), HOUR - MICRO)
# A number as the service must print it: no exponent, no trailing zero.
PLAIN_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]*[1-9]")

# Every example wipes the database itself, so function-scoped fixtures are fine.
SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
# Examples cost dozens of requests: skip the explain phase, which reruns them many times.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]


# --- spelling instants and numbers -------------------------------------------------------


@dataclass(frozen=True)
class Spelling:
    """How an instant is written: `style` is offset, z, naive (UTC) or date (if midnight UTC)."""

    offset: timedelta
    trim: bool
    style: str


def _offset_text(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def spell(moment: datetime, how: Spelling) -> str:
    utc = moment.astimezone(UTC)
    if how.style == "date" and utc == utc.replace(hour=0, minute=0, second=0, microsecond=0):
        return utc.date().isoformat()
    local = moment.astimezone(timezone(how.offset)) if how.style == "offset" else utc
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        fraction = f"{local.microsecond:06d}"
        text += "." + (fraction.rstrip("0") if how.trim else fraction)
    if how.style == "offset":
        return text + _offset_text(how.offset)
    return text + ("" if how.style == "naive" else "Z")


EVENT_SPELLINGS = st.builds(
    Spelling, st.sampled_from(OFFSETS), st.booleans(), st.sampled_from(("offset", "z"))
)
QUERY_SPELLINGS = st.builds(
    Spelling,
    st.sampled_from(OFFSETS),
    st.booleans(),
    st.sampled_from(("offset", "z", "naive", "date")),
)


def spell_minutes(value: Decimal, trim: bool, pad: int) -> Decimal:
    """The same number with its trailing zeros trimmed, or with up to `pad` more (max 6 places)."""
    if trim:
        return reference.plain(value)
    places = min(6, max(0, -int(value.as_tuple().exponent)) + pad)
    return value.quantize(Decimal(1).scaleb(-places))


# --- the world --------------------------------------------------------------------------


@dataclass(frozen=True)
class CompanySpec:
    id: str
    name: str
    billing: str
    ats: int | None
    moves_to: str | None  # billing system after all ingestion, if it changes


@dataclass(frozen=True)
class EventSpec:
    id: str
    company_id: str
    cost_key: str
    at: datetime
    minutes: Decimal
    interview_id: str | None
    is_test: bool
    focus: str | None


@dataclass(frozen=True)
class Wire:
    """How one sending of an event is spelled; every spelling is the same payload."""

    when: Spelling
    trim: bool
    pad: int
    explicit_defaults: bool

    def render(self, event: EventSpec) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": event.id,
            "companyId": event.company_id,
            "costKey": event.cost_key,
            "occurredAt": spell(event.at, self.when),
        }
        if event.minutes or self.explicit_defaults:
            body["minutes"] = spell_minutes(event.minutes, self.trim, self.pad)
        if event.is_test or self.explicit_defaults:
            body["isTest"] = event.is_test
        if event.interview_id is not None:
            body["interviewId"] = event.interview_id
        if event.focus is not None:
            body["agentFocus"] = event.focus
        return body


WIRES = st.builds(Wire, EVENT_SPELLINGS, st.booleans(), st.integers(0, 3), st.booleans())


@dataclass
class World:
    ats_count: int
    companies: list[CompanySpec]
    rules: list[dict[str, Any]]
    events: list[EventSpec]
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    voids_after: list[list[str]] = field(default_factory=list)  # per batch; repeats re-void

    @property
    def sent(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches for event in batch]

    @property
    def voided(self) -> set[str]:
        return {event_id for ids in self.voids_after for event_id in ids}

    def final_companies(self) -> list[reference.Company]:
        return [reference.Company(c.id, c.name, c.moves_to or c.billing) for c in self.companies]


def _between(low: datetime, high: datetime) -> st.SearchStrategy[datetime]:
    """Spread evenly over [low, high): st.integers leans hard towards its minimum."""
    return st.builds(
        lambda day, second, micro: low + day * DAY + timedelta(seconds=second) + micro * MICRO,
        st.sampled_from(range((high - low) // DAY)),
        st.sampled_from(range(86400)),
        st.one_of(st.just(0), st.integers(0, 999_999)),
    )


# How long after an interview's start its events happen: at once, within the hour, or weeks on.
LATER = st.one_of(
    st.just(timedelta(0)),
    st.integers(0, 3600).map(lambda seconds: timedelta(seconds=seconds)),
    _between(EARLIEST, EARLIEST + 45 * DAY).map(lambda moment: moment - EARLIEST),
)


def _month_starts(low: datetime, high: datetime) -> list[datetime]:
    starts, moment = [], low.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while moment < high:
        starts.append(moment)
        moment = (moment + 32 * DAY).replace(day=1)
    return starts


def instants(
    low: datetime = EARLIEST, high: datetime = LATEST_START
) -> st.SearchStrategy[datetime]:
    """Instants to the microsecond or second, many at or next to an hour, day or month edge."""
    anywhere = _between(low, high)
    aligned = st.one_of(
        anywhere.map(lambda m: m.replace(minute=0, second=0, microsecond=0)),
        anywhere.map(lambda m: m.replace(hour=0, minute=0, second=0, microsecond=0)),
        st.sampled_from(_month_starts(low, high)),
    )
    return st.one_of(
        anywhere,
        anywhere.map(lambda m: m.replace(microsecond=0)),
        st.builds(lambda edge, nudge: edge + nudge, aligned, st.sampled_from(NUDGES)),
    )


# An odd last (sixth) decimal: such a base cost changes which way an exact tie rounds
# half-even, and such minutes times 0.5 per minute are exact ties.
ODD_MILLIONTHS = st.integers(0, 5_000_000).map(lambda n: Decimal(2 * n + 1).scaleb(-6))
AMOUNTS = st.one_of(
    st.integers(0, 5).map(Decimal),
    st.decimals(min_value=0, max_value=20, places=2),
    st.decimals(min_value=0, max_value=3, places=6),
)
BASE_COSTS = st.one_of(AMOUNTS, ODD_MILLIONTHS)
PER_MINUTE = st.one_of(
    AMOUNTS, st.just(Decimal("0.5")), st.sampled_from([Decimal("0.25"), Decimal("0.125")])
)
MINUTES = st.one_of(
    st.integers(0, 90).map(Decimal),
    st.decimals(min_value=0, max_value=600, places=2),
    st.decimals(min_value=0, max_value=10000, places=6),
    ODD_MILLIONTHS,
)


@st.composite
def _companies(draw: st.DrawFn, ats_count: int) -> list[CompanySpec]:
    count = draw(st.sampled_from(range(1, 5)))
    ids = draw(st.lists(st.uuids(), min_size=count, max_size=count, unique=True))
    companies = []
    for company_id in ids:
        billing = draw(st.sampled_from(BILLING))
        ats = draw(st.none() | st.integers(0, ats_count - 1)) if ats_count else None
        moves = draw(
            st.sampled_from((None, None, None, "minutes" if billing == "credits" else "credits"))
        )
        companies.append(
            CompanySpec(str(company_id), draw(st.sampled_from(NAMES)), billing, ats, moves)
        )
    return companies


def _rule(
    draw: st.DrawFn, key: str, company: str | None, focus: str | None, since: str
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "costKey": key,
        "baseCost": draw(BASE_COSTS),
        "includedMinutes": draw(st.one_of(st.integers(0, 15).map(Decimal), AMOUNTS)),
        "costPerMinute": draw(PER_MINUTE),
        "effectiveFrom": since,
    }
    if company is not None:
        rule["companyId"] = company
    if focus is not None:
        rule["agentFocus"] = focus
    return rule


@st.composite
def _rules(draw: st.DrawFn, companies: list[CompanySpec]) -> tuple[list[dict[str, Any]], list[str]]:
    """A platform rule since 2020 for each priced key, then overrides and price changes.

    Rules never tie on effectiveFrom at the same level: which one wins a tie is
    a documented choice of the service, not a rule of the SPEC.
    """
    priced = sorted(draw(st.sets(st.sampled_from(COST_KEYS), min_size=1, max_size=3)))
    rules = [_rule(draw, key, None, None, RULES_SINCE) for key in priced]
    extras = draw(
        st.lists(
            st.tuples(
                st.sampled_from(COST_KEYS),
                st.none() | st.sampled_from([c.id for c in companies]),
                st.sampled_from(FOCUSES),
                instants(EARLIEST, HORIZON),
            ),
            max_size=6,
            unique_by=lambda extra: (extra[0], extra[1], extra[2], extra[3]),
        )
    )
    for key, company, focus, since in extras:
        rules.append(_rule(draw, key, company, focus, spell(since, draw(EVENT_SPELLINGS))))
    return rules, priced


@st.composite
def _events(draw: st.DrawFn, companies: list[CompanySpec], priced: list[str]) -> list[EventSpec]:
    """Interviews (one company, one test flag each) spanning up to 45 days, and loose events."""

    def cost_key(company: CompanySpec) -> str:
        # A credits company's events need a rule at ingestion: only priced keys.
        return draw(st.sampled_from(priced if company.billing == "credits" else COST_KEYS))

    events: list[EventSpec] = []
    for interview in range(draw(st.sampled_from(range(10)))):
        company = draw(st.sampled_from(companies))
        is_test = draw(st.integers(0, 5)) == 0
        begin = draw(instants())
        for number in range(draw(st.sampled_from(range(1, 6)))):
            at = begin + draw(LATER)
            events.append(
                EventSpec(
                    f"iv{interview}:ev-{number}",
                    company.id,
                    cost_key(company),
                    at,
                    draw(MINUTES),
                    f"interview.{interview}",
                    is_test,
                    draw(st.sampled_from(FOCUSES)),
                )
            )
    for number in range(draw(st.sampled_from(range(11)))):
        company = draw(st.sampled_from(companies))
        events.append(
            EventSpec(
                f"loose_{number}",
                company.id,
                cost_key(company),
                draw(instants()),
                draw(MINUTES),
                None,
                draw(st.integers(0, 5)) == 0,
                draw(st.sampled_from(FOCUSES)),
            )
        )
    return events


def _first_voids(draw: st.DrawFn, events: list[EventSpec]) -> list[str]:
    """For some interviews, the id of their first counted event."""
    firsts: dict[str, EventSpec] = {}
    for event in events:
        if event.interview_id is None or event.is_test:
            continue
        known = firsts.get(event.interview_id)
        if known is None or event.at < known.at:
            firsts[event.interview_id] = event
    return [event.id for event in firsts.values() if draw(st.booleans())]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    ats_count = draw(st.integers(0, 2))
    companies = draw(_companies(ats_count))
    rules, priced = draw(_rules(companies))
    events = draw(_events(companies, priced))
    world = World(ats_count, companies, rules, events)
    if not events:
        return world
    resent = draw(st.lists(st.sampled_from(events), max_size=6))
    sendings = [(event, draw(WIRES)) for event in events + resent]
    order = draw(st.permutations(range(len(sendings))))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), min_size=1, max_size=3)))
    for low, high in pairwise([0, *cuts, len(order)]):
        if low < high:
            world.batches.append([sendings[i][1].render(sendings[i][0]) for i in order[low:high]])
    first_batch: dict[str, int] = {}
    for index, batch in enumerate(world.batches):
        for body in batch:
            first_batch.setdefault(body["id"], index)
    world.voids_after = [[] for _ in world.batches]
    targets = _first_voids(draw, events) + draw(
        st.lists(st.sampled_from([event.id for event in events]), max_size=5)
    )
    last = len(world.batches) - 1
    for event_id in targets:
        world.voids_after[draw(st.integers(first_batch[event_id], last))].append(event_id)
    return world


# --- building the world through the API and asking it ------------------------------------


@dataclass
class Built:
    api: Api
    company_keys: dict[str, str] = field(default_factory=dict)
    ats_keys: list[str] = field(default_factory=list)


def build(client: TestClient, db: Database, world: World, with_keys: bool) -> Built:
    wipe(db)
    built = Built(Api.bootstrap(client, db))
    api = built.api
    ats_ids = [api.ats(f"ATS {index}") for index in range(world.ats_count)]
    for company in world.companies:
        ats = ats_ids[company.ats] if company.ats is not None else None
        api.company(company.name, company.billing, ats, company.id)
    for rule in world.rules:
        api.rule(**rule)
    seen: set[str] = set()
    for batch, voids in zip(world.batches, world.voids_after, strict=True):
        duplicates = 0
        for body in batch:
            duplicates += body["id"] in seen
            seen.add(body["id"])
        assert api.ingest(*batch) == {"accepted": len(batch) - duplicates, "duplicates": duplicates}
        for event_id in voids:
            response = api.void(event_id)
            assert response.status_code == 200, response.text
    for company in world.companies:
        if company.moves_to is not None:
            response = api.client.patch(
                f"/admin/companies/{company.id}",
                json={"billingSystem": company.moves_to},
                headers=api.auth(api.platform_key),
            )
            assert response.status_code == 200, response.text
    if with_keys:
        built.company_keys = {c.id: api.key("company", c.id) for c in world.companies}
        built.ats_keys = [api.key("ats", ats_id) for ats_id in ats_ids]
    return built


def _plain_number(text: str) -> Decimal:
    assert PLAIN_NUMBER.fullmatch(text), f"{text} is not printed as a plain number"
    return Decimal(text)


def usage(api: Api, key: str, start: str, end: str, company_id: str | None = None) -> Any:
    """The `data` of one GET /billing/usage; every decimal must be printed plainly."""
    params = {"start": start, "end": end} | ({"companyId": company_id} if company_id else {})
    response = api.usage(key, **params)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=_plain_number)["data"]


def edges(world: World) -> st.SearchStrategy[datetime]:
    """Window edges: anywhere, on bucket edges, on or next to an event, or beyond all of them."""
    options = [
        instants(EARLIEST - 40 * DAY, HORIZON + 40 * DAY),
        st.sampled_from((EARLIEST - DAY, HORIZON + DAY)),
    ]
    if world.events:
        options.append(
            st.builds(
                lambda at, nudge: at + nudge,
                st.sampled_from([event.at for event in world.events]),
                st.sampled_from((timedelta(0), MICRO, -MICRO)),
            )
        )
    return st.one_of(options)


def _stored_credits(db: Database) -> dict[str, Decimal | None]:
    """Each stored event's credits (kept as integer millionths), to tell pricing bugs apart."""
    with db.transaction(write=False) as session:
        rows = session.execute(select(UsageEvent.id, UsageEvent.credits)).all()
    return {
        row.id: None if row.credits is None else Decimal(row.credits).scaleb(-6) for row in rows
    }


# --- the properties -------------------------------------------------------------------------


def _check_window(built: Built, world: World, data: st.DataObject) -> None:
    """Every kind of caller, over one random window, gets exactly the reference's data."""
    api = built.api
    low, high = data.draw(edges(world), label="edge"), data.draw(edges(world), label="edge")
    start, end = min(low, high), max(low, high) + (MICRO if low == high else timedelta(0))
    start_text = spell(start, data.draw(QUERY_SPELLINGS, label="start spelling"))
    end_text = spell(end, data.draw(QUERY_SPELLINGS, label="end spelling"))
    companies = world.final_companies()
    by_id = {company.id: company for company in companies}

    def expect(scope: Sequence[reference.Company]) -> dict[str, Any]:
        return reference.usage_data(world.sent, world.voided, scope, start, end, world.rules)

    for company in companies:
        # A company key ignores companyId, even another company's.
        ignored = data.draw(st.none() | st.sampled_from(sorted(by_id)), label="ignored companyId")
        got = usage(api, built.company_keys[company.id], start_text, end_text, ignored)
        assert got == expect([company]), f"company key of {company}"
    for index, ats_key in enumerate(built.ats_keys):
        managed = [by_id[c.id] for c in world.companies if c.ats == index]
        assert usage(api, ats_key, start_text, end_text) == expect(managed), f"ATS {index}"
        for company in managed:
            got = usage(api, ats_key, start_text, end_text, company.id)
            assert got == expect([company]), f"ATS {index} narrowed to {company}"
    assert usage(api, api.platform_key, start_text, end_text) == expect(companies)
    chosen = data.draw(st.sampled_from(companies), label="platform companyId")
    got = usage(api, api.platform_key, start_text, end_text, chosen.id)
    assert got == expect([chosen]), f"platform narrowed to {chosen}"


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(world=worlds(), data=st.data())
def test_every_caller_sees_exactly_the_reference(
    client: TestClient, db: Database, world: World, data: st.DataObject
) -> None:
    built = build(client, db, world, with_keys=True)
    rules = [reference.Rule.parse(rule) for rule in world.rules]
    stored = _stored_credits(db)
    wrong = [
        (event, reference.rule_in_force(event, rules), stored.get(event_id), expected)
        for event_id, event in reference.unique_events(world.sent).items()
        if stored.get(event_id, "missing") != (expected := reference.credits_of(event, rules))
    ]
    assert not wrong, "(event, rule, stored credits, expected credits)"
    for _ in range(data.draw(st.integers(1, 2), label="windows")):
        _check_window(built, world, data)


def _numbers(data: dict[str, Any]) -> dict[tuple[str, ...], Decimal]:
    """Every numeric field of a report, keyed by where it is."""
    found: dict[tuple[str, ...], Decimal] = {}

    def take(prefix: tuple[str, ...], item: dict[str, Any]) -> None:
        for name, value in item.items():
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                found[(*prefix, name)] = Decimal(value)
        for entry in item.get("breakdownByCostKey", []):
            take((*prefix, "breakdown", entry["costKey"]), entry)

    take(("top",), data)
    for company in data["companies"]:
        take(("company", company["companyId"]), company)
    return found


def _shape(data: dict[str, Any]) -> list[set[str]]:
    """The field names at the top level and of each company, in order."""
    return [set(data)] + [set(company) for company in data["companies"]]


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(world=worlds(), data=st.data())
def test_adjacent_windows_add_up_to_their_union(
    client: TestClient, db: Database, world: World, data: st.DataObject
) -> None:
    api = build(client, db, world, with_keys=False).api
    points = sorted(set(data.draw(st.lists(edges(world), min_size=3, max_size=5), label="cuts")))
    while len(points) < 3:
        points.append(points[-1] + DAY)

    def ask(start: datetime, end: datetime) -> Any:
        how = data.draw(QUERY_SPELLINGS), data.draw(QUERY_SPELLINGS)
        return usage(api, api.platform_key, spell(start, how[0]), spell(end, how[1]))

    whole = ask(points[0], points[-1])
    parts = [ask(start, end) for start, end in pairwise(points)]
    for part in parts:
        assert _shape(part) == _shape(whole)
    summed: dict[tuple[str, ...], Decimal] = {}
    for part in parts:
        for where, value in _numbers(part).items():
            summed[where] = summed.get(where, Decimal(0)) + value
    union = _numbers(whole)
    wrong = [
        (where, union.get(where, Decimal(0)), summed.get(where, Decimal(0)))
        for where in sorted(set(summed) | set(union))
        if union.get(where, Decimal(0)) != summed.get(where, Decimal(0))
    ]
    assert not wrong, "(field, over the union, summed over the parts)"


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(world=worlds())
def test_aggregates_agree_with_a_recomputation_from_raw_events(
    client: TestClient, db: Database, world: World
) -> None:
    build(client, db, world, with_keys=False)
    with db.transaction(write=False) as session:
        assert find_mismatches(session) == []
