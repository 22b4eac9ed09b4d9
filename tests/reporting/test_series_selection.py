"""`companySeries` on GET /billing/usage/series: whose buckets the answer lists (both databases).

The answer with the parameter is the default answer without the company
entries it leaves out; the top-level buckets are unchanged (they still sum
every company in scope, and still add up to GET /billing/usage).
"""

import json
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally.errors import ValidationFailed
from tally.reporting.series import MAX_LISTED, SELECTION_PATTERN, company_selection
from tests.factories import Api, event

WINDOW = {"start": "2026-03-28T00:00:00Z", "end": "2026-03-31T00:00:00Z"}
PATH = "/billing/usage/series"
NAMES = ("Acme Corp", "Globex", "Initech", "Umbrella", "Zeta", "acme")


def _data(api: Api, key: str | None = None, **params: Any) -> Any:
    response = api.get(PATH, key=key, **params)
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert body["success"] is True
    return body["data"]


def _error(api: Api, key: str | None = None, **params: Any) -> tuple[int, dict[str, Any]]:
    response = api.get(PATH, key=key, **params)
    body = response.json()
    assert body["success"] is False, response.text
    return response.status_code, body["error"]


def _world(api: Api) -> list[str]:
    """Six companies of both units with usage spread over the window's days."""
    ids = [api.company(name, "minutes" if i % 2 else "credits") for i, name in enumerate(NAMES)]
    api.rule(
        costKey="interview_minutes",
        baseCost=1,
        costPerMinute=Decimal("0.5"),
        effectiveFrom="2020-01-01T00:00:00Z",
    )
    events = [
        event(
            company,
            f"e{i}-{day}",
            occurredAt=f"2026-03-{28 + day}T{(i * 5) % 24:02d}:30:00Z",
            minutes=Decimal(f"{i + 1}.25"),
            interviewId=f"i{i}-{day % 2}",
        )
        for i, company in enumerate(ids)
        for day in range(3)
        if (i + day) % 3
    ]
    api.ingest(*events)
    return ids


@pytest.fixture
def world(api: Api) -> list[str]:
    return _world(api)


def test_none_leaves_out_every_company_and_keeps_the_buckets(api: Api, world: list[str]) -> None:
    full = _data(api, **WINDOW, granularity="day", timeZone="Europe/Berlin")
    bare = _data(api, **WINDOW, granularity="day", timeZone="Europe/Berlin", companySeries="none")
    assert len(full["companies"]) == len(NAMES)
    assert bare == full | {"companies": []}


def test_all_is_the_default(api: Api, world: list[str]) -> None:
    assert _data(api, **WINDOW, companySeries="all") == _data(api, **WINDOW)


def test_the_buckets_still_add_up_to_the_usage_report(api: Api, world: list[str]) -> None:
    bare = _data(api, **WINDOW, granularity="hour", companySeries="none")
    response = api.usage(**WINDOW)
    assert response.status_code == 200
    usage = json.loads(response.text, parse_float=Decimal)["data"]
    for field in ("totalMinutesUsed", "totalCreditsUsed", "totalInterviews"):
        assert sum(bucket[field] for bucket in bare["buckets"]) == usage[field], field
    events = sum(e["events"] for b in bare["buckets"] for e in b["breakdownByCostKey"])
    assert events == sum(entry["events"] for entry in usage["breakdownByCostKey"])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(chosen=st.sets(st.integers(0, len(NAMES) - 1), min_size=1), order=st.randoms())
def test_a_list_keeps_exactly_those_companies(
    api: Api, world: list[str], chosen: set[int], order: Any
) -> None:
    full = _data(api, **WINDOW, granularity="day")
    listed = [world[i] for i in chosen]
    order.shuffle(listed)  # the order of the list does not matter
    some = _data(api, **WINDOW, granularity="day", companySeries=",".join(listed))
    expected = [c for c in full["companies"] if c["companyId"] in set(listed)]
    assert some == full | {"companies": expected}


def test_an_ats_key_lists_only_companies_it_manages(api: Api) -> None:
    ats = api.ats()
    managed = api.company("Initech", "minutes", ats)
    other = api.company("Outside", "credits")
    key = api.key("ats", ats)
    got = _data(api, key=key, **WINDOW, companySeries=managed)
    assert [c["companyId"] for c in got["companies"]] == [managed]
    for stranger in (other, str(uuid.uuid4())):  # existing or not: the same answer
        status, error = _error(api, key=key, **WINDOW, companySeries=f"{managed},{stranger}")
        assert status == 403
        assert error["code"] == "COMPANY_NOT_ACCESSIBLE"
        assert error["details"] == {"field": "companySeries"}


def test_a_list_outside_a_narrowed_answer_is_refused(api: Api, world: list[str]) -> None:
    got = _data(api, **WINDOW, companyId=world[0], companySeries=world[0])
    assert [c["companyId"] for c in got["companies"]] == [world[0]]
    status, error = _error(api, **WINDOW, companyId=world[0], companySeries=world[1])
    assert (status, error["code"]) == (403, "COMPANY_NOT_ACCESSIBLE")
    status, error = _error(api, **WINDOW, companySeries=str(uuid.uuid4()))
    assert (status, error["code"]) == (403, "COMPANY_NOT_ACCESSIBLE")


GOOD = "0b6f3c1e-8a4d-4f2b-9c3e-1d2a3b4c5d6e"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "None",
        "ALL",
        "all,none",
        "none," + GOOD,
        GOOD + ",",
        "," + GOOD,
        GOOD + ",," + GOOD,
        GOOD + " ",
        GOOD.replace("-", ""),
        "{" + GOOD + "}",
        "urn:uuid:" + GOOD,
        GOOD[:-1],
        GOOD + "0",
        ",".join([GOOD] * 2),
        ",".join(str(uuid.uuid4()) for _ in range(MAX_LISTED + 1)),
    ],
)
def test_bad_values_are_400_naming_the_parameter(api: Api, value: str) -> None:
    status, error = _error(api, **WINDOW, companySeries=value)
    assert (status, error["code"]) == (400, "VALIDATION_ERROR")
    assert error["details"]["errors"][0]["field"] == "companySeries"


def test_repeated_and_misspelt_parameters_are_refused(api: Api) -> None:
    response = api.client.get(
        f"{PATH}?companySeries=none&companySeries=all", headers=api.auth(api.platform_key)
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["field"] == "companySeries"
    status, error = _error(api, company_series="none")
    assert (status, error["details"]["errors"][0]["field"]) == (400, "company_series")


def test_the_csv_does_not_take_it(api: Api) -> None:
    response = api.get("/billing/usage.csv", companySeries="none")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["field"] == "companySeries"


def test_the_openapi_document_describes_it(api: Api) -> None:
    operation = api.client.get("/openapi.json").json()["paths"][PATH]["get"]
    (param,) = [p for p in operation["parameters"] if p["name"] == "companySeries"]
    assert param["in"] == "query"
    assert param["required"] is False
    assert param["schema"]["type"] == "string"
    assert param["schema"]["pattern"] == SELECTION_PATTERN
    assert "403" in operation["responses"]


@given(ids=st.lists(st.uuids(), min_size=1, max_size=MAX_LISTED, unique=True))
def test_the_parser_takes_every_list_of_distinct_ids(ids: list[uuid.UUID]) -> None:
    text = ",".join(str(i) for i in ids)
    assert company_selection(text) == frozenset(ids)
    assert company_selection(text.upper()) == frozenset(ids)


@given(text=st.one_of(st.text(max_size=80), st.from_regex(SELECTION_PATTERN, fullmatch=True)))
def test_the_parser_and_the_pattern_agree(text: str) -> None:
    """What the OpenAPI pattern allows is taken, unless it repeats a company."""
    parts = text.lower().split(",")
    allowed = re.fullmatch(SELECTION_PATTERN, text) is not None
    taken = allowed and len(set(parts)) == len(parts)
    try:
        company_selection(text)
    except ValidationFailed:
        assert not taken
    else:
        assert taken
