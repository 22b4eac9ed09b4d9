"""Issue 10 item 4: values that used to answer 500 get a 4xx naming the field, on both
databases, and change nothing.

- numbers with huge or tiny exponents (`tally.core.quantities`),
- instants whose offset takes them out of the years 1-9999 in UTC (`tally.core.instants`),
- the NUL character, which PostgreSQL refuses in text (`tally.core.text`).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from httpx2 import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally.db.engine import Database
from tests.factories import Api, event
from tests.usage.test_ingest import snapshot

OVERFLOWING = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+00:01"]


@pytest.fixture
def acme(api: Api) -> str:
    """A company with one stored event, so that "unchanged" means something."""
    company = api.company("Acme Corp", "minutes")
    api.ingest(event(company, "ev-stored", interviewId="iv-stored"))
    return company


@contextmanager
def unchanged(db: Database) -> Iterator[None]:
    before = snapshot(db)
    yield
    assert snapshot(db) == before


def refused(response: Response, status: int, code: str, field: str) -> dict[str, Any]:
    """The envelope of a 4xx that names the field, and no trace of internals."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    fields = [item["field"] for item in (error["details"] or {}).get("errors", [])]
    assert field in fields or field in error["message"], body
    for leak in ("Traceback", "SELECT", "INSERT", "UPDATE", "psycopg", "sqlite"):
        assert leak not in response.text
    return error


def raw_events(api: Api, body: str) -> Response:
    headers = api.auth(api.platform_key) | {"Content-Type": "application/json"}
    return api.client.post("/usage/events", content=body, headers=headers)


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "minutes",
    ["1e999999", "-1e999999", "1e-999999", "1E+999999999", "1e-999999999", "1e13", "1.0000001"],
)
def test_minutes_with_extreme_exponents_are_422_naming_minutes(
    api: Api, db: Database, acme: str, minutes: str
) -> None:
    good = '{"id": "ok", "companyId": "%s", "costKey": "interview_minutes", '
    good += '"occurredAt": "2026-02-10T10:00:00Z", "minutes": 1}'
    bad = good.replace('"ok"', '"bad"').replace('"minutes": 1}', f'"minutes": {minutes}}}')
    with unchanged(db):
        error = refused(
            raw_events(api, f'{{"events": [{good % acme}, {bad % acme}]}}'),
            422,
            "INVALID_EVENTS",
            "minutes",
        )
    assert [(item["index"], item["field"]) for item in error["details"]["errors"]] == [
        (1, "minutes")
    ]


# JSON number literals of every shape: sign, digits, fraction, exponent of any size.
NUMBERS = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    st.from_regex(r"(0|[1-9][0-9]{0,40})", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,40}", fullmatch=True)),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, sign, n: f"{e}{sign}{n}",
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.integers(0, 10**10),
        ),
    ),
)


def millionths(literal: str) -> int | None:
    """The literal in millionths by string arithmetic, None past 6 decimals or 10**14."""
    mantissa, _, exponent_text = literal.lower().partition("e")
    sign = -1 if mantissa.startswith("-") else 1
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0
    significant = digits.rstrip("0")
    exponent = int(exponent_text or 0) - len(fraction) + len(digits) - len(significant)
    if exponent < -6 or len(significant) + exponent > 14:
        return None
    return sign * int(significant) * 10 ** (exponent + 6)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(number=NUMBERS)
def test_any_json_number_as_minutes_is_stored_exactly_or_refused_by_name(
    api: Api, db: Database, acme: str, number: str
) -> None:
    body = '{"events": [{"id": "n-%s", "companyId": "%s", "costKey": "interview_minutes", '
    body += '"occurredAt": "2026-02-10T10:00:00Z", "minutes": %s}]}'
    scaled = millionths(number)
    acceptable = scaled is not None and 0 <= scaled <= 10_000 * 10**6
    before = snapshot(db)
    response = raw_events(api, body % (abs(hash(number)), acme, number))
    if acceptable:
        assert response.status_code == 200, (number, response.text)
    else:
        refused(response, 422, "INVALID_EVENTS", "minutes")
        assert snapshot(db) == before


def test_an_integer_of_5000_digits_is_a_400_not_a_500(api: Api, db: Database, acme: str) -> None:
    body = '{"events": [{"id": "x", "companyId": "%s", "costKey": "interview_minutes", '
    body += '"occurredAt": "2026-02-10T10:00:00Z", "minutes": ' + "9" * 5000 + "}]}"
    with unchanged(db):
        refused(raw_events(api, body % acme), 400, "VALIDATION_ERROR", "body")


def test_minus_zero_is_zero(api: Api, acme: str) -> None:
    body = '{"events": [{"id": "z", "companyId": "%s", "costKey": "interview_minutes", '
    body += '"occurredAt": "2026-02-10T10:00:00Z", "minutes": -0.0}]}'
    assert raw_events(api, body % acme).json()["data"] == {"accepted": 1, "duplicates": 0}
    # The same event with 0 is the same payload: a duplicate, not a conflict.
    again = api.ingest(event(acme, "z", minutes=0))
    assert again == {"accepted": 0, "duplicates": 1}


# --- instants --------------------------------------------------------------------------------


@pytest.mark.parametrize("at", OVERFLOWING)
def test_key_expiry_out_of_the_calendar_is_400(api: Api, db: Database, acme: str, at: str) -> None:
    body = {"name": "k", "kind": "platform", "scopes": ["admin"], "expiresAt": at}
    with unchanged(db):
        refused(api.post("/admin/api-keys", body), 400, "VALIDATION_ERROR", "expiresAt")


@pytest.mark.parametrize("at", OVERFLOWING)
def test_rule_start_out_of_the_calendar_is_400(api: Api, db: Database, acme: str, at: str) -> None:
    body = {"costKey": "interview_minutes", "baseCost": 1, "effectiveFrom": at}
    with unchanged(db):
        refused(api.post("/admin/pricing-rules", body), 400, "VALIDATION_ERROR", "effectiveFrom")


@pytest.mark.parametrize("at", OVERFLOWING)
def test_event_time_out_of_the_calendar_is_422(api: Api, db: Database, acme: str, at: str) -> None:
    with unchanged(db):
        refused(api.events(event(acme, occurredAt=at)), 422, "INVALID_EVENTS", "occurredAt")


@pytest.mark.parametrize("at", OVERFLOWING)
@pytest.mark.parametrize("name", ["start", "end"])
def test_report_bounds_out_of_the_calendar_are_400(api: Api, at: str, name: str) -> None:
    refused(api.usage(**{name: at}), 400, "VALIDATION_ERROR", name)


def test_the_calendar_edges_themselves_work(api: Api) -> None:
    rule = api.rule(costKey="interview_minutes", effectiveFrom="0001-01-01T00:01:00+00:01")
    assert rule["effectiveFrom"] == "0001-01-01T00:00:00Z"
    body = {"name": "k", "kind": "platform", "scopes": ["admin"]}
    key = api.created("/admin/api-keys", body | {"expiresAt": "9999-12-31T23:59:59Z"})
    assert key["expiresAt"] == "9999-12-31T23:59:59Z"
    assert api.get("/admin/companies", key=key["key"]).status_code == 200


# --- NUL characters --------------------------------------------------------------------------

NUL_NAMES = ["a\x00b", "\x00\x00", "Acme\x00 Corp"]


@pytest.mark.parametrize("name", NUL_NAMES)
def test_nul_in_a_company_name_is_400(api: Api, db: Database, acme: str, name: str) -> None:
    with unchanged(db):
        refused(
            api.post("/admin/companies", {"name": name, "billingSystem": "minutes"}),
            400,
            "VALIDATION_ERROR",
            "name",
        )
        patch = api.client.patch(
            f"/admin/companies/{acme}", json={"name": name}, headers=api.auth(api.platform_key)
        )
        refused(patch, 400, "VALIDATION_ERROR", "name")


@pytest.mark.parametrize("name", NUL_NAMES)
def test_nul_in_an_ats_or_key_name_is_400(api: Api, db: Database, acme: str, name: str) -> None:
    with unchanged(db):
        refused(
            api.post("/admin/ats-integrations", {"name": name}), 400, "VALIDATION_ERROR", "name"
        )
        body = {"name": name, "kind": "platform", "scopes": ["admin"]}
        refused(api.post("/admin/api-keys", body), 400, "VALIDATION_ERROR", "name")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "ev\x00"),
        ("interviewId", "iv\x00"),
        ("costKey", "interview\x00"),
        ("agentFocus", "SCREENING\x00"),
        ("companyId", "\x00"),
        ("occurredAt", "2026-02-10T10:00:00Z\x00"),
    ],
)
def test_nul_in_an_event_field_is_422(
    api: Api, db: Database, acme: str, field: str, value: str
) -> None:
    with unchanged(db):
        refused(api.events(event(acme, **{field: value})), 422, "INVALID_EVENTS", field)


@pytest.mark.parametrize("event_id", ["ev%00", "%00", "ev-stored%00"])
def test_nul_in_a_void_id_is_refused_before_the_database(
    api: Api, db: Database, acme: str, event_id: str
) -> None:
    # No event can have such an id (ingestion refuses it): the path is malformed.
    with unchanged(db):
        response = api.void(event_id)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "event_id" in response.json()["error"]["message"]


def test_nul_in_query_parameters_is_400(api: Api, acme: str) -> None:
    refused(api.usage(companyId="\x00"), 400, "VALIDATION_ERROR", "companyId")
    refused(api.usage(start="2026-01-01\x00"), 400, "VALIDATION_ERROR", "start")
