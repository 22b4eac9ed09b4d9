"""Properties of GET /billing/usage/series and the CSV over random histories (both databases).

The worlds of tests/usage/test_properties.py (random companies, rules, events,
duplicates, late events and voids) are asked for a series in a random zone,
granularity and window; every bucket must equal tests/usage/reference.py's
answer for that bucket, the buckets must add up to GET /billing/usage, and
the CSV's rows must be the series' non-empty breakdown entries; asked to list
some companies' buckets (`companySeries`), the answer is the same less the
others' entries.
"""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.db.engine import Database
from tests.factories import Api
from tests.usage import reference
from tests.usage.test_properties import (
    PHASES,
    QUERY_SPELLINGS,
    SLOW,
    Built,
    World,
    build,
    edges,
    instants,
    spell,
    usage,
    worlds,
)

SERIES_CASES = Path(__file__).resolve().parents[1] / "usage" / "data" / "series-buckets.json"
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe")
# Daylight-saving changes of 2025 inside the worlds' history: windows start near them often.
CHANGES = (
    datetime(2025, 3, 30, 1, tzinfo=UTC),  # Europe/Berlin spring forward
    datetime(2025, 10, 26, 1, tzinfo=UTC),  # Europe/Berlin fall back
    datetime(2025, 4, 5, 15, tzinfo=UTC),  # Australia/Lord_Howe, 30 minutes back
    datetime(2025, 10, 4, 15, 30, tzinfo=UTC),  # Australia/Lord_Howe, 30 minutes forward
    datetime(2025, 3, 9, 5, 30, tzinfo=UTC),  # America/St_Johns spring forward
    datetime(2025, 11, 2, 4, 30, tzinfo=UTC),  # America/St_Johns fall back
)
# Longest window per granularity, well under 1,000 buckets.
LONGEST = {
    "hour": timedelta(days=4),
    "day": timedelta(days=70),
    "week": timedelta(days=500),
    "month": timedelta(days=900),
}
MICRO = timedelta(microseconds=1)


def _parse(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


@st.composite
def requests(draw: st.DrawFn, world: World) -> tuple[datetime, datetime, str, str]:
    granularity = draw(st.sampled_from(tuple(LONGEST)))
    near_change = st.builds(
        lambda change, hours: change + timedelta(hours=hours),
        st.sampled_from(CHANGES),
        st.integers(-30, 2),
    )
    start = draw(st.one_of(edges(world), near_change, instants()))
    length = draw(
        st.one_of(
            st.just(LONGEST[granularity]),
            st.integers(1, 10**6).map(lambda n: LONGEST[granularity] * n / 10**6),
        )
    )
    return start, start + max(MICRO, length), granularity, draw(st.sampled_from(ZONES))


def _series(api: Api, key: str, params: dict[str, str]) -> Any:
    response = api.get("/billing/usage/series", key=key, **params)
    assert response.status_code == 200, response.text
    return _parse(response.text)["data"]


def _csv_rows(api: Api, key: str, params: dict[str, str]) -> list[list[str]]:
    response = api.get("/billing/usage.csv", key=key, **params)
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text, newline="")))[1:]


def _rows_of(series: dict[str, Any]) -> list[list[str]]:
    """The CSV rows a series stands for (names here never begin with a formula character)."""
    rows = []
    for index, _ in enumerate(series["buckets"]):
        for company in series["companies"]:
            bucket = company["buckets"][index]
            for entry in bucket["breakdownByCostKey"]:
                minutes, credits = entry.get("minutesUsed"), entry.get("creditsUsed")
                rows.append(
                    [
                        bucket["start"],
                        bucket["end"],
                        company["companyId"],
                        company["companyName"],
                        company["billingSystem"],
                        entry["costKey"],
                        str(entry["events"]),
                        "" if minutes is None else str(minutes),
                        "" if credits is None else str(credits),
                    ]
                )
    return rows


def _check(built: Built, world: World, key: str, scope: list[reference.Company], data: Any) -> None:
    start, end, granularity, zone = data.draw(requests(world), label="request")
    params = {
        "start": spell(start, data.draw(QUERY_SPELLINGS, label="start spelling")),
        "end": spell(end, data.draw(QUERY_SPELLINGS, label="end spelling")),
        "granularity": granularity,
        "timeZone": zone,
    }
    api = built.api
    got = _series(api, key, params)
    expected = reference.series_data(
        world.sent, world.voided, scope, (start, end), granularity, zone, world.rules
    )
    assert got["buckets"] == expected["buckets"]
    assert got == expected
    # Listing some companies, or none, sums the top-level buckets over the
    # scope as the totals are read (service.scope_series): the same answer
    # without the entries left out.
    ids = [entry["companyId"] for entry in expected["companies"]]
    some = st.lists(st.sampled_from(ids), unique=True) if ids else st.just([])
    listed = data.draw(some, label="companySeries")
    selection = ",".join(listed) if listed else "none"
    part = _series(api, key, params | {"companySeries": selection})
    assert part["buckets"] == expected["buckets"]
    assert part == expected | {
        "companies": [entry for entry in expected["companies"] if entry["companyId"] in listed]
    }
    whole = usage(api, key, params["start"], params["end"])
    for field in ("totalMinutesUsed", "totalCreditsUsed", "totalInterviews"):
        if field in whole:
            assert sum(b[field] for b in got["buckets"]) == whole[field], field
    for company, summary in zip(got["companies"], whole["companies"], strict=True):
        for field in ("totalMinutesUsed", "totalCreditsUsed", "totalInterviews"):
            if field in summary:
                assert sum(b[field] for b in company["buckets"]) == summary[field], field
    assert _csv_rows(api, key, params) == _rows_of(got)


@settings(max_examples=12, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(world=worlds(), data=st.data())
def test_every_bucket_equals_the_reference(
    client: TestClient, db: Database, world: World, data: st.DataObject
) -> None:
    built = build(client, db, world, with_keys=True)
    companies = world.final_companies()
    by_id = {company.id: company for company in companies}
    _check(built, world, built.api.platform_key, companies, data)
    chosen = data.draw(st.sampled_from(companies), label="company key")
    _check(built, world, built.company_keys[chosen.id], [chosen], data)
    for index, ats_key in enumerate(built.ats_keys):
        managed = [by_id[c.id] for c in world.companies if c.ats == index]
        _check(built, world, ats_key, managed, data)


def test_the_reference_calendar_agrees_with_the_conformance_cases() -> None:
    for case in json.loads(SERIES_CASES.read_text())["cases"]:
        start = datetime.fromisoformat(case["start"])
        end = datetime.fromisoformat(case["end"])
        got = reference.local_buckets(start, end, case["granularity"], case["timeZone"])
        expected = [
            (datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]))
            for b in case["buckets"]
        ]
        assert got == expected, case["why"]
