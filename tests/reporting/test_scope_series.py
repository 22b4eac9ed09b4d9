"""The top-level buckets summed over a scope as its totals are read (service.scope_series).

A series that lists some companies' buckets, or none (`companySeries`), sums
the top-level buckets from the running totals of every company at once,
without each company's buckets, or, when the scope is every company of a
billing system, from that unit's own running totals (tally.usage.units).
Histories here are dense around a month's and a day's end, partly folded
into the running totals and partly left in the unfolded tail, so a pair's
rows cross the periods whose changes the sum reads. Every top-level bucket
must equal the default answer's (each company computed on its own) and,
for minutes, the plain sum of the raw events.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest.mock import patch

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.db.engine import Database
from tally.reporting import repository, service
from tally.usage import fold
from tests.conftest import wipe
from tests.factories import Api, event
from tests.usage.test_properties import PHASES, SLOW

# Four days around the end of January: month, day and hour edges inside.
ORIGIN = datetime(2026, 1, 30, tzinfo=UTC)
SPAN_MINUTES = 4 * 24 * 60
KEYS = ("interview_minutes", "profile_enrichment")
UNITS = ("minutes", "credits", "minutes", "credits")
PATH = "/billing/usage/series"


@dataclass(frozen=True)
class Sent:
    company: int
    key: int
    minute: int
    minutes: Decimal
    folded: bool


events = st.lists(
    st.builds(
        Sent,
        st.integers(0, len(UNITS) - 1),
        st.integers(0, len(KEYS) - 1),
        st.integers(0, SPAN_MINUTES - 1),
        st.decimals(min_value=0, max_value=30, places=2),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)
# Window edges in minutes from ORIGIN: anywhere, or on an hour or a (UTC) midnight,
# the first of February included.
edge = st.one_of(
    st.integers(-6 * 60, SPAN_MINUTES + 6 * 60),
    st.integers(-6, SPAN_MINUTES // 60 + 6).map(lambda hours: hours * 60),
    st.integers(-1, SPAN_MINUTES // 1440 + 1).map(lambda days: days * 1440),
)
windows = (
    st.tuples(edge, edge)
    .filter(lambda pair: pair[0] != pair[1])
    .map(
        lambda pair: (
            ORIGIN + timedelta(minutes=min(pair)),
            timedelta(minutes=abs(pair[1] - pair[0])),
        )
    )
)


def _at(minute: int) -> str:
    return (ORIGIN + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _series(api: Api, key: str | None = None, **params: str) -> Any:
    response = api.get(PATH, key=key, **params)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)["data"]


@dataclass
class Built:
    ids: list[str]
    units: list[str]  # each company's billing system at the end
    ats_key: str  # an ATS managing companies 0 and 1: part of each unit only


def _build(
    api: Api, db: Database, sent: list[Sent], moved: int | None = None, refold: bool = False
) -> Built:
    """Companies, rules and the events: the folded ones into the running totals,
    the rest left in the tail; then `moved` changes billing system (its
    history moves between the units' totals) and, with `refold`, the tail is
    folded after the move."""
    wipe(db)
    fresh = Api.bootstrap(api.client, db)
    api.platform_key = fresh.platform_key
    ats = api.ats("Partial")
    ids = [
        api.company(f"C{index}", unit, ats=ats if index < 2 else None)
        for index, unit in enumerate(UNITS)
    ]
    for key in KEYS:
        api.rule(
            costKey=key,
            baseCost=1,
            costPerMinute=Decimal("0.5"),
            effectiveFrom="2020-01-01T00:00:00Z",
        )
    batches = [[item for item in sent if item.folded == folded] for folded in (True, False)]
    for index, batch in enumerate(batches):
        if batch:
            bodies = [
                event(
                    ids[item.company],
                    f"e{index}-{number}",
                    costKey=KEYS[item.key],
                    occurredAt=_at(item.minute),
                    minutes=item.minutes,
                    interviewId=f"i{item.company}-{item.minute // 600}",
                )
                for number, item in enumerate(batch)
            ]
            api.ingest(*bodies)
        if index == 0:
            # The first batch into the running totals, the second left in the tail.
            with db.transaction(write=True) as session:
                fold.fold_all(session)
    units = list(UNITS)
    if moved is not None:
        units[moved] = "credits" if units[moved] == "minutes" else "minutes"
        response = api.client.patch(
            f"/admin/companies/{ids[moved]}",
            json={"billingSystem": units[moved]},
            headers=api.auth(api.platform_key),
        )
        assert response.status_code == 200, response.text
    if refold:
        with db.transaction(write=True) as session:
            fold.fold_all(session)
    return Built(ids, units, api.key("ats", ats))


def _minutes(sent: list[Sent], units: list[str], low: datetime, high: datetime) -> Decimal:
    """The minutes companies' minutes in [low, high), summed from the events sent."""
    return sum(
        (
            item.minutes
            for item in sent
            if units[item.company] == "minutes"
            and low <= ORIGIN + timedelta(minutes=item.minute) < high
        ),
        Decimal(0),
    )


def _check(
    api: Api, sent: list[Sent], built: Built, params: dict[str, str], listed: list[int]
) -> None:
    """The platform's series (every company: the units' own totals) and the
    ATS's (part of each unit: the companies' totals summed as read)."""
    chosen = [built.ids[index] for index in listed]
    for key, scope in ((api.platform_key, range(len(UNITS))), (built.ats_key, range(2))):
        # Whether the scope holds every company of one of its units.
        billed = {unit: {i for i, u in enumerate(built.units) if u == unit} for unit in UNITS}
        whole = any({i for i in scope if built.units[i] == unit} == billed[unit] for unit in UNITS)
        mine = [built.ids[index] for index in scope if built.ids[index] in chosen]
        full = _series(api, key=key, **params)
        with patch.object(service, "_unit_totals", wraps=service._unit_totals) as units_read:
            selection = ",".join(mine) if mine else "none"
            part = _series(api, key=key, **params, companySeries=selection)
        # Listing half the scope or more, every company's buckets are computed anyway.
        assert units_read.called == (whole and 2 * len(mine) < len(scope))
        assert part["buckets"] == full["buckets"]
        assert part["companies"] == [c for c in full["companies"] if c["companyId"] in mine]
    # Minutes, independently: the raw events of the minutes companies per bucket.
    for bucket in _series(api, **params, companySeries="none")["buckets"]:
        low = datetime.fromisoformat(bucket["start"])
        high = datetime.fromisoformat(bucket["end"])
        assert bucket["totalMinutesUsed"] == _minutes(sent, built.units, low, high)


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(
    sent=events,
    window=windows,
    granularity=st.sampled_from(("hour", "day")),
    zone=st.sampled_from(("UTC", "Asia/Kolkata")),
    listed=st.lists(st.integers(0, len(UNITS) - 1), unique=True, max_size=2),
    moved=st.none() | st.integers(0, len(UNITS) - 1),
    refold=st.booleans(),
)
def test_top_level_buckets_equal_every_company_computed_alone(
    client: TestClient,
    db: Database,
    sent: list[Sent],
    window: tuple[datetime, timedelta],
    granularity: str,
    zone: str,
    listed: list[int],
    moved: int | None,
    refold: bool,
) -> None:
    """Also after a company changed billing system: its history moved from
    one unit's totals to the other's, its unfolded tail folded before or
    after reading."""
    api = Api(client, "")
    built = _build(api, db, sent, moved, refold)
    start, length = window
    params = {
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + length).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "granularity": granularity,
        "timeZone": zone,
    }
    _check(api, sent, built, params, listed)


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(sent=events)
def test_days_at_half_past_read_the_hour_rows_between_them(
    client: TestClient, db: Database, sent: list[Sent]
) -> None:
    """Days in Asia/Kolkata begin at 18:30 UTC: each needs the hour rows of its
    UTC day before 18:00, which the scope reads in one pass over the span."""
    api = Api(client, "")
    built = _build(api, db, sent)
    params = {
        "start": "2026-01-29T18:30:00Z",
        "end": "2026-02-03T18:30:00Z",
        "granularity": "day",
        "timeZone": "Asia/Kolkata",
    }
    _check(api, sent, built, params, [])


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(sent=events, window=windows)
def test_window_totals_as_one_difference_equal_the_two_totals(
    client: TestClient,
    db: Database,
    sent: list[Sent],
    window: tuple[datetime, timedelta],
) -> None:
    """GET /billing/usage of many companies takes each pair's window as one
    difference from SQL (repository.DIFFERENCES_FROM); here of every scope."""
    api = Api(client, "")
    _build(api, db, sent)
    start, length = window
    params = {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{start + length:%Y-%m-%dT%H:%M:%SZ}"}
    saved = repository.DIFFERENCES_FROM
    try:
        repository.DIFFERENCES_FROM = 1
        once = api.usage(**params)
        repository.DIFFERENCES_FROM = 10**6
        twice = api.usage(**params)
    finally:
        repository.DIFFERENCES_FROM = saved
    assert once.status_code == twice.status_code == 200, once.text
    got, expected = (json.loads(r.text, parse_float=Decimal)["data"] for r in (once, twice))
    assert got == expected
    assert got["totalMinutesUsed"] == _minutes(sent, list(UNITS), start, start + length)
