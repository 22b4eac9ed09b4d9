"""GET /billing/usage/series and GET /billing/usage.csv: shape, rules, errors (both databases)."""

import csv
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from tally.reporting.csv_export import escape
from tests.factories import Api, event

WINDOW = {"start": "2026-03-28T00:00:00Z", "end": "2026-03-31T00:00:00Z"}


def _data(api: Api, path: str, key: str | None = None, **params: Any) -> Any:
    response = api.get(path, key=key, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.text, parse_float=Decimal)
    assert body["success"] is True
    assert body["error"] is None
    return body["data"]


def _world(api: Api) -> tuple[str, str]:
    minutes = api.company("Acme Corp", "minutes")
    credits = api.company("Globex", "credits")
    api.rule(
        costKey="interview_minutes",
        baseCost=1,
        costPerMinute=Decimal("0.5"),
        effectiveFrom="2020-01-01T00:00:00Z",
    )
    api.ingest(
        # Berlin: 2026-03-29 is a 23-hour day (spring forward).
        event(minutes, "a1", occurredAt="2026-03-28T22:59:59.999999Z", minutes=Decimal("1.5")),
        event(minutes, "a2", occurredAt="2026-03-28T23:00:00Z", minutes=2, interviewId="i1"),
        event(minutes, "a3", occurredAt="2026-03-29T21:59:00Z", minutes=3, interviewId="i1"),
        event(credits, "g1", occurredAt="2026-03-29T22:00:00Z", minutes=4, interviewId="i2"),
        event(minutes, "t1", occurredAt="2026-03-29T12:00:00Z", minutes=50, isTest=True),
    )
    return minutes, credits


def test_series_in_berlin_days(api: Api) -> None:
    minutes, credits = _world(api)
    data = _data(
        api, "/billing/usage/series", **WINDOW, granularity="day", timeZone="Europe/Berlin"
    )
    assert data["period"] == {"start": WINDOW["start"], "end": WINDOW["end"]}
    assert data["granularity"] == "day"
    assert data["timeZone"] == "Europe/Berlin"
    edges = [(b["start"], b["end"]) for b in data["buckets"]]
    assert edges == [
        ("2026-03-28T00:00:00Z", "2026-03-28T23:00:00Z"),
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
        ("2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z"),
        ("2026-03-30T22:00:00Z", "2026-03-31T00:00:00Z"),
    ]
    acme, globex = data["companies"]
    assert (acme["companyName"], globex["companyName"]) == ("Acme Corp", "Globex")
    assert acme["companyId"] == minutes
    assert [b["totalMinutesUsed"] for b in acme["buckets"]] == [
        Decimal("1.5"),
        5,
        0,
        0,
    ]
    assert all("totalCreditsUsed" not in b for b in acme["buckets"])
    assert acme["buckets"][1]["totalInterviews"] == 1
    assert acme["buckets"][1]["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 2, "minutesUsed": 5}
    ]
    assert acme["buckets"][2] == {
        "start": "2026-03-29T22:00:00Z",
        "end": "2026-03-30T22:00:00Z",
        "totalMinutesUsed": 0,
        "totalInterviews": 0,
        "breakdownByCostKey": [],
    }
    assert globex["companyId"] == credits
    assert [b["totalCreditsUsed"] for b in globex["buckets"]] == [0, 0, 3, 0]
    top = data["buckets"][2]
    assert top["totalMinutesUsed"] == 0
    assert top["totalCreditsUsed"] == 3
    assert top["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 1, "minutesUsed": 0, "creditsUsed": 3}
    ]


def test_buckets_add_up_to_the_usage_report(api: Api) -> None:
    _world(api)
    data = _data(
        api, "/billing/usage/series", **WINDOW, granularity="hour", timeZone="Asia/Kolkata"
    )
    usage = _data(api, "/billing/usage", **WINDOW)
    assert len(data["buckets"]) == 73  # 72 hours, split at :30 UTC
    assert sum(b["totalMinutesUsed"] for b in data["buckets"]) == usage["totalMinutesUsed"]
    assert sum(b["totalCreditsUsed"] for b in data["buckets"]) == usage["totalCreditsUsed"]
    assert sum(b["totalInterviews"] for b in data["buckets"]) == usage["totalInterviews"]


def test_defaults_are_utc_days(api: Api) -> None:
    _world(api)
    data = _data(api, "/billing/usage/series", **WINDOW)
    assert (data["granularity"], data["timeZone"]) == ("day", "UTC")
    assert [b["start"] for b in data["buckets"]] == [
        "2026-03-28T00:00:00Z",
        "2026-03-29T00:00:00Z",
        "2026-03-30T00:00:00Z",
    ]


@pytest.mark.parametrize("path", ["/billing/usage/series", "/billing/usage.csv"])
@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"timeZone": "Mars/Olympus"}, "VALIDATION_ERROR", "timeZone"),
        ({"granularity": "minute"}, "VALIDATION_ERROR", "granularity"),
        ({"granularity": ""}, "VALIDATION_ERROR", "granularity"),
        (
            {"granularity": "hour", "start": "2026-01-01", "end": "2026-03-01"},
            "VALIDATION_ERROR",
            "granularity",
        ),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "INVALID_DATE_RANGE", None),
        ({"start": "yesterday"}, "VALIDATION_ERROR", "start"),
        ({"companyId": "nope"}, "VALIDATION_ERROR", "companyId"),
        ({"company_id": "x"}, "VALIDATION_ERROR", "company_id"),
    ],
)
def test_bad_parameters_get_the_envelope(
    api: Api, path: str, params: dict[str, str], code: str, field: str | None
) -> None:
    response = api.get(path, **params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    if field is not None:
        assert body["error"]["details"]["errors"][0]["field"] == field


@pytest.mark.parametrize("path", ["/billing/usage/series", "/billing/usage.csv"])
def test_repeated_parameters_are_refused(api: Api, path: str) -> None:
    response = api.client.get(
        f"{path}?granularity=day&granularity=hour", headers=api.auth(api.platform_key)
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["field"] == "granularity"


@pytest.mark.parametrize("path", ["/billing/usage/series", "/billing/usage.csv"])
def test_keys_and_tenancy(api: Api, path: str) -> None:
    minutes, credits = _world(api)
    ats = api.ats()
    managed = api.company("Initech", "minutes", ats)
    assert api.client.get(path).status_code == 401
    writer = api.key("platform", scopes=["write:usage"])
    forbidden = api.get(path, key=writer)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["details"] == {"requiredScope": "read:billing"}
    ats_key = api.key("ats", ats)
    refused = api.get(path, key=ats_key, companyId=minutes)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "COMPANY_NOT_ACCESSIBLE"
    if path.endswith("series"):
        company_key = api.key("company", credits)
        got = _data(api, path, key=company_key, companyId=minutes, **WINDOW)
        assert [c["companyId"] for c in got["companies"]] == [credits]
        got = _data(api, path, key=ats_key, **WINDOW)
        assert [c["companyId"] for c in got["companies"]] == [managed]
        assert "totalCreditsUsed" not in got["buckets"][0]


def _csv(api: Api, **params: Any) -> tuple[Any, list[list[str]]]:
    response = api.get("/billing/usage.csv", **params)
    assert response.status_code == 200, response.text
    return response, list(csv.reader(io.StringIO(response.text, newline="")))


def test_csv_rows_equal_the_series(api: Api) -> None:
    minutes, credits = _world(api)
    params = {**WINDOW, "granularity": "day", "timeZone": "Europe/Berlin"}
    response, rows = _csv(api, **params)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="usage-20260328T000000Z-20260331T000000Z.csv"'
    )
    assert response.text.endswith("\r\n")
    assert rows == [
        [
            "periodStart",
            "periodEnd",
            "companyId",
            "companyName",
            "billingSystem",
            "costKey",
            "events",
            "minutesUsed",
            "creditsUsed",
        ],
        [
            "2026-03-28T00:00:00Z",
            "2026-03-28T23:00:00Z",
            minutes,
            "Acme Corp",
            "minutes",
            "interview_minutes",
            "1",
            "1.5",
            "",
        ],
        [
            "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z",
            minutes,
            "Acme Corp",
            "minutes",
            "interview_minutes",
            "2",
            "5",
            "",
        ],
        [
            "2026-03-29T22:00:00Z",
            "2026-03-30T22:00:00Z",
            credits,
            "Globex",
            "credits",
            "interview_minutes",
            "1",
            "",
            "3",
        ],
    ]


def test_csv_without_granularity_is_one_period(api: Api) -> None:
    minutes, credits = _world(api)
    _, rows = _csv(api, **WINDOW)
    assert [row[2] for row in rows[1:]] == [minutes, credits]
    assert [row[:2] for row in rows[1:]] == [[WINDOW["start"], WINDOW["end"]]] * 2
    assert [row[6:] for row in rows[1:]] == [["3", "6.5", ""], ["1", "", "3"]]


@pytest.mark.parametrize("name", ["=HYPERLINK(1)", "+1 Corp", "-1 Corp", "@SUM(A1)"])
def test_csv_defuses_formulas(api: Api, name: str) -> None:
    company = api.company(name, "minutes")
    api.ingest(event(company, "e1", occurredAt="2026-03-29T10:00:00Z"))
    _, rows = _csv(api, **WINDOW)
    assert rows[1][3] == "'" + name


def test_csv_quotes_per_rfc_4180(api: Api) -> None:
    company = api.company('Acme, "the" Corp\nLtd', "minutes")
    api.ingest(event(company, "e1", occurredAt="2026-03-29T10:00:00Z"))
    response, rows = _csv(api, **WINDOW)
    assert '"Acme, ""the"" Corp\nLtd"' in response.text
    assert rows[1][3] == 'Acme, "the" Corp\nLtd'


@pytest.mark.parametrize("cell", ["=1", "+1", "-1", "@x", "\tx", "\rx"])
def test_escape_prefixes_every_formula_start(cell: str) -> None:
    assert escape(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Acme", "1.5", "", "'quoted", " =x", "a=b"])
def test_escape_leaves_other_cells(cell: str) -> None:
    assert escape(cell) == cell
