"""Malformed query parameters of GET /billing/usage, and the error envelope (SPEC 1, 2)."""

import re
import uuid
from typing import Any

import pytest
from httpx2 import Response

from tests.factories import Api

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
LEAKS = ("Traceback", 'File "', "SELECT ", "INSERT ", "sqlalchemy", "psycopg", "sqlite3")


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    """The response is exactly the error envelope, with nothing internal in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"success", "data", "error", "timestamp"}
    assert body["success"] is False
    assert body["data"] is None
    assert INSTANT.fullmatch(body["timestamp"]), body["timestamp"]
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert {"code", "message"} <= set(error)
    assert error["code"] == code, body
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", error["code"])
    assert isinstance(error["message"], str)
    assert error.get("details") is None or isinstance(error["details"], dict)
    for leak in LEAKS:
        assert leak not in response.text, leak
    result: dict[str, Any] = error
    return result


def assert_invalid(response: Response, field: str) -> None:
    error = assert_error(response, 400, "VALIDATION_ERROR")
    fields = [item["field"] for item in error["details"]["errors"]]
    assert field in fields, fields


BAD_INSTANTS = [
    "yesterday",
    "now",
    "",
    " ",
    "2026-13-01",
    "2026-02-30",
    "2026-00-10",
    "2026-01-01T25:00:00Z",
    "2026-01-01T10:61:00Z",
    "2026-01-01T00:00:00.1234567Z",
    "2026-01-01T00:00:00.123456789+01:00",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00 PST",
    "01/02/2026",
    "1767225600",
    "2026-01-01T00:00:00Z; DROP TABLE usage_events",
    "x" * 200,
]


@pytest.mark.parametrize("field", ["start", "end"])
def test_malformed_instants_name_their_parameter(
    api: Api, field: str, subtests: pytest.Subtests
) -> None:
    other = {"start": "2020-01-01"} if field == "end" else {"end": "2030-01-01"}
    for value in BAD_INSTANTS:
        with subtests.test(value=value):
            assert_invalid(api.usage(**other, **{field: value}), field)


def test_malformed_company_id_is_named(api: Api, subtests: pytest.Subtests) -> None:
    ats = api.ats()
    api.company("Acme Corp", ats=ats)
    ats_key = api.key("ats", ats)
    values = [
        "acme",
        "",
        "123",
        f"{uuid.uuid4()}x",
        str(uuid.uuid4())[:-1],
        "' OR 1=1 --",
        "00000000-0000-0000-0000-00000000000g",
    ]
    for key in (api.platform_key, ats_key):
        for value in values:
            with subtests.test(value=value, kind="platform" if key == api.platform_key else "ats"):
                assert_invalid(api.usage(key, companyId=value), "companyId")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-01-01", "2026-01-01"),
        ("2026-02-01", "2026-01-01"),
        ("2026-01-01T00:00:00Z", "2026-01-01"),
        ("2026-01-01T05:30:00+05:30", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00", "2025-12-31T23:00:00-01:00"),
    ],
)
def test_start_not_before_end_is_invalid_date_range(api: Api, start: str, end: str) -> None:
    assert_error(api.usage(start=start, end=end), 400, "INVALID_DATE_RANGE")


def test_start_after_the_default_end_is_invalid_date_range(api: Api) -> None:
    assert_error(api.usage(start="2999-01-01"), 400, "INVALID_DATE_RANGE")


def test_one_microsecond_window_is_valid(api: Api) -> None:
    response = api.usage(start="2026-01-01T00:00:00Z", end="2026-01-01T00:00:00.000001Z")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["period"] == {
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:00:00.000001Z",
    }


@pytest.mark.parametrize(
    ("value", "echo"),
    [
        ("2026-01-01", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00", "2026-01-01T00:00:00Z"),
        ("2026-01-01T09:30:00.250+05:30", "2026-01-01T04:00:00.25Z"),
        ("2026-01-01T00:00:00.123456Z", "2026-01-01T00:00:00.123456Z"),
    ],
)
def test_well_formed_instants_are_accepted(api: Api, value: str, echo: str) -> None:
    response = api.usage(start=value, end="2027-01-01")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["period"]["start"] == echo


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-01T00:00:01Z", "9999-12-31"),
        ("9999-11-15", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T00:00:00Z", "9999-12-31T23:59:59.999999Z"),
        ("0001-01-01", "0001-02-01"),
        ("0001-01-01T00:00:00.000001Z", "0001-03-01T12:00:00Z"),
        ("1000-01-01", "1000-01-02"),
    ],
)
def test_far_off_windows_are_answered(api: Api, start: str, end: str) -> None:
    """Every instant from year 1 to 9999 is a valid bound: answered, never a 500."""
    api.company("Acme Corp")
    response = api.usage(start=start, end=end)
    assert response.status_code == 200, response.text
    period = response.json()["data"]["period"]
    assert INSTANT.fullmatch(period["start"]), period
    assert INSTANT.fullmatch(period["end"]), period
    assert response.json()["data"]["companies"][0]["totalMinutesUsed"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"end": "0001-01-01"},
        {"end": "0001-01-10"},
        {"start": "0001-01-01T00:00:00+05:00", "end": "2026-01-01"},
        {"start": "2026-01-01", "end": "9999-12-31T23:59:59-05:00"},
    ],
    ids=repr,
)
def test_windows_outside_the_calendar_never_fail_the_service(
    api: Api, params: dict[str, str]
) -> None:
    """Bounds (given, or defaulted) outside years 1 to 9999 UTC: an answer or a 400, not a 500."""
    response = api.usage(**params)
    if response.status_code == 200:
        period = response.json()["data"]["period"]
        assert INSTANT.fullmatch(period["start"]), period
        assert INSTANT.fullmatch(period["end"]), period
    else:
        error = assert_error(response, 400, response.json()["error"]["code"])
        assert error["code"] in ("VALIDATION_ERROR", "INVALID_DATE_RANGE")


def test_zero_padded_years_are_echoed_in_iso_8601(api: Api) -> None:
    response = api.usage(start="0999-01-01", end="1000-01-01")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["period"] == {
        "start": "0999-01-01T00:00:00Z",
        "end": "1000-01-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/nothing",
        "/billing",
        "/billing/usage/extra",
        "/billing/usages",
        "/admin/nothing",
        "/usage/events/x/y",
        "/usage",
    ],
)
def test_unknown_paths_are_404_in_the_envelope(api: Api, path: str) -> None:
    assert_error(api.get(path), 404, "NOT_FOUND")
    assert_error(api.client.get(path), 404, "NOT_FOUND")
    assert_error(api.client.post(path, headers=api.auth(api.platform_key)), 404, "NOT_FOUND")


def test_wrong_method_is_an_enveloped_error(api: Api) -> None:
    response = api.client.delete("/billing/usage", headers=api.auth(api.platform_key))
    assert_error(response, 405, response.json()["error"]["code"])
    response = api.client.put("/usage/events", headers=api.auth(api.platform_key))
    assert_error(response, 405, response.json()["error"]["code"])


def test_every_auth_and_access_error_is_the_envelope(api: Api) -> None:
    ats = api.ats()
    ats_key = api.key("ats", ats)
    assert_error(api.client.get("/billing/usage"), 401, "INVALID_API_KEY")
    assert_error(api.usage("sk_live_" + "0" * 43), 401, "INVALID_API_KEY")
    error = assert_error(
        api.usage(api.key("platform", scopes=["admin"])), 403, "INSUFFICIENT_SCOPE"
    )
    assert error["details"]["requiredScope"] == "read:billing"
    assert_error(api.usage(ats_key, companyId=str(uuid.uuid4())), 403, "COMPANY_NOT_ACCESSIBLE")
    assert_error(api.usage(companyId=str(uuid.uuid4())), 403, "COMPANY_NOT_ACCESSIBLE")


def test_validation_is_checked_before_company_access(api: Api) -> None:
    # A malformed window is reported as such even for a company the key cannot see.
    ats_key = api.key("ats", api.ats())
    assert_invalid(api.usage(ats_key, companyId=str(uuid.uuid4()), start="garbage"), "start")
