"""Quiet acceptance is over (issue 10 items 6 and 7): each of these inputs was
accepted and silently changed, or ignored; each now gets its documented 4xx
naming what is wrong, and nothing is stored."""

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any

import pytest
import simplejson
from fastapi import Query
from fastapi.testclient import TestClient
from httpx2 import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from tally.app import create_app
from tally.db.engine import Database
from tally.settings import Settings
from tests.factories import Api, event
from tests.usage.test_ingest import snapshot

SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
RULES_FROM = "2026-01-01T00:00:00Z"
ADMIN_BODIES: dict[str, dict[str, Any]] = {
    "/admin/ats-integrations": {"name": "Lever"},
    "/admin/companies": {"name": "Hooli", "billingSystem": "minutes"},
    "/admin/pricing-rules": {"costKey": "interview_minutes", "baseCost": 1},
    "/admin/api-keys": {"name": "k", "kind": "platform", "scopes": ["admin"]},
}


@pytest.fixture
def company(api: Api) -> str:
    company_id = api.company("Acme Corp", "minutes")
    api.ingest(event(company_id, "ev-stored"))  # so that "unchanged" means something
    return company_id


@contextmanager
def unchanged(db: Database) -> Iterator[None]:
    before = snapshot(db)
    yield
    assert snapshot(db) == before


def _error(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


def _fields(error: dict[str, Any]) -> list[str]:
    details = error["details"] or {}
    return [item["field"] for item in details.get("errors", [])]


def _raw(api: Api, path: str, content: bytes, content_type: str | None) -> Response:
    headers = api.auth(api.platform_key)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.client.post(path, content=content, headers=headers)


# --- content types and encodings -------------------------------------------------


@pytest.mark.parametrize("path", ["/usage/events", *ADMIN_BODIES])
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16"],
)
def test_a_body_not_sent_as_json_is_415(
    api: Api, db: Database, company: str, path: str, content_type: str | None
) -> None:
    body = ADMIN_BODIES.get(path) or {"events": [event(company, "ev-new")]}
    with unchanged(db):
        response = _raw(api, path, simplejson.dumps(body).encode(), content_type)
        error = _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in error["message"] or "UTF-8" in error["message"]


@pytest.mark.parametrize("path", ["/usage/events", *ADMIN_BODIES])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_json_body_not_in_utf8_is_400(
    api: Api, db: Database, company: str, path: str, encoding: str
) -> None:
    body = ADMIN_BODIES.get(path) or {"events": [event(company, "ev-new")]}
    with unchanged(db):
        response = _raw(api, path, simplejson.dumps(body).encode(encoding), "application/json")
        error = _error(response, 400, "VALIDATION_ERROR")
    assert _fields(error) == ["body"]  # UTF-16-BE of ASCII is UTF-8, but not JSON


def test_json_with_a_utf8_charset_is_accepted(api: Api, company: str) -> None:
    body = simplejson.dumps({"events": [event(company, "ev-new")]}).encode()
    response = _raw(api, "/usage/events", body, "application/json; charset=UTF-8")
    assert response.status_code == 200, response.text


# --- duplicate keys ----------------------------------------------------------------


def test_a_repeated_key_in_an_event_is_refused_not_last_wins(
    api: Api, db: Database, company: str
) -> None:
    raw = (
        '{"events": [{"id": "ev-dup", "companyId": "' + company + '",'
        ' "costKey": "interview_minutes", "occurredAt": "2026-02-10T10:00:00Z",'
        ' "minutes": 1, "minutes": 9999}]}'
    )
    with unchanged(db):
        error = _error(
            _raw(api, "/usage/events", raw.encode(), "application/json"), 400, "VALIDATION_ERROR"
        )
    assert _fields(error) == ["minutes"]
    assert "more than once" in error["message"]


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        ("/admin/ats-integrations", '{"name": "a", "name": "b"}', "name"),
        ("/admin/companies", '{"name": "Ab", "billingSystem": "minutes", "name": "Cd"}', "name"),
        ("/admin/pricing-rules", '{"costKey": "k", "baseCost": 1, "baseCost": 1000}', "baseCost"),
        ("/usage/events", '{"events": [], "events": []}', "events"),
    ],
)
def test_a_repeated_key_in_any_body_is_refused(
    api: Api, db: Database, company: str, path: str, raw: str, field: str
) -> None:
    with unchanged(db):
        error = _error(_raw(api, path, raw.encode(), "application/json"), 400, "VALIDATION_ERROR")
    assert _fields(error) == [field]


def test_a_repeated_key_in_a_patch_is_refused(api: Api, db: Database, company: str) -> None:
    with unchanged(db):
        response = api.client.patch(
            f"/admin/companies/{company}",
            content=b'{"billingSystem": "credits", "billingSystem": "minutes"}',
            headers=api.auth(api.platform_key) | {"Content-Type": "application/json"},
        )
        assert _fields(_error(response, 400, "VALIDATION_ERROR")) == ["billingSystem"]


# --- query parameters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "field", "problem"),
    [
        (
            "/billing/usage",
            "company_id=9f0c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13",
            "company_id",
            "unknown",
        ),
        ("/billing/usage", "companyid=x", "companyid", "unknown"),
        ("/billing/usage", "start=2026-01-01&start=2026-02-01", "start", "more than once"),
        ("/billing/usage", "companyId=a&companyId=b", "companyId", "more than once"),
        ("/admin/companies", "page=1&page=2", "page", "more than once"),
        ("/admin/companies", "size=5", "size", "unknown"),
        ("/admin/api-keys", "limit=5&offset=10", "offset", "unknown"),
        ("/healthz", "verbose=1", "verbose", "unknown"),
    ],
)
def test_unknown_and_repeated_query_parameters_are_400(
    api: Api, path: str, query: str, field: str, problem: str
) -> None:
    response = api.client.get(f"{path}?{query}", headers=api.auth(api.platform_key))
    error = _error(response, 400, "VALIDATION_ERROR")
    assert _fields(error) == [field]
    assert problem in error["message"]


def test_unknown_query_parameters_on_writes_are_refused_before_storing(
    api: Api, db: Database, company: str
) -> None:
    with unchanged(db):
        response = api.client.post(
            "/usage/events?dryRun=1",
            content=simplejson.dumps({"events": [event(company, "ev-new")]}),
            headers=api.auth(api.platform_key) | {"Content-Type": "application/json"},
        )
        assert _fields(_error(response, 400, "VALIDATION_ERROR")) == ["dryRun"]


def test_declared_query_parameters_still_work(api: Api, company: str) -> None:
    response = api.get("/billing/usage", companyId=company, start="2026-01-01", end="2026-03-01")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["totalMinutesUsed"] == 10
    assert api.get("/admin/companies", page=1, limit=5).status_code == 200


# --- event ids -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "interviewId"])
@pytest.mark.parametrize("value", [".", ".."])
def test_dot_ids_are_refused(api: Api, db: Database, company: str, field: str, value: str) -> None:
    with unchanged(db):
        response = api.events(event(company, "ev-ok") | {field: value})
        error = _error(response, 422, "INVALID_EVENTS")
    assert error["details"]["errors"] == [
        {"index": 0, "field": field, "message": 'must not be "." or ".."'}
    ]


@pytest.mark.parametrize("in_path", ["%2E", "%2E%2E", "a%00b", "x" * 129])
def test_a_void_of_a_malformed_id_is_400(
    api: Api, db: Database, company: str, in_path: str
) -> None:
    with unchanged(db):
        error = _error(api.void(in_path), 400, "VALIDATION_ERROR")
    assert _fields(error) == ["path.event_id"] or "event_id" in error["message"]


# --- allowedIps ----------------------------------------------------------------------


def test_an_empty_allowed_ips_list_is_refused(api: Api, db: Database, company: str) -> None:
    body = {"name": "k", "kind": "company", "companyId": company, "scopes": ["read:billing"]}
    with unchanged(db):
        error = _error(
            api.post("/admin/api-keys", body | {"allowedIps": []}), 400, "VALIDATION_ERROR"
        )
    assert _fields(error) == ["allowedIps"]
    assert api.post("/admin/api-keys", body | {"allowedIps": None}).status_code == 201


# --- exact amounts in admin bodies -------------------------------------------------------


@pytest.mark.parametrize("field", ["baseCost", "includedMinutes", "costPerMinute"])
@pytest.mark.parametrize(
    "number",
    ["2.00000000000000001", "1e-999999999", "0.0000001", "1e999999", "1e-7", "1E+999999999"],
)
def test_amounts_that_are_not_exact_six_decimal_numbers_are_refused(
    api: Api, db: Database, company: str, field: str, number: str
) -> None:
    others = "" if field == "baseCost" else '"baseCost": 1, '
    raw = '{"costKey": "interview_minutes", ' + others + f'"{field}": {number}' + "}"
    with unchanged(db):
        response = _raw(api, "/admin/pricing-rules", raw.encode(), "application/json")
        error = _error(response, 400, "VALIDATION_ERROR")
    assert _fields(error) == [field]


@pytest.mark.parametrize("value", ["5", True, None, [], {}, -1, 1_000_000_000])
def test_amounts_must_be_numbers_in_range(api: Api, db: Database, company: str, value: Any) -> None:
    with unchanged(db):
        response = api.post(
            "/admin/pricing-rules", {"costKey": "interview_minutes", "baseCost": value}
        )
        assert _fields(_error(response, 400, "VALIDATION_ERROR")) == ["baseCost"]


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(
    amounts=st.lists(
        st.decimals(min_value=0, max_value=Decimal("999999999.999999"), places=6),
        min_size=3,
        max_size=3,
    )
)
def test_amounts_are_stored_and_shown_exactly(api: Api, amounts: list[Decimal]) -> None:
    names = ["baseCost", "includedMinutes", "costPerMinute"]
    body = {"costKey": "interview_minutes", **dict(zip(names, amounts, strict=True))}
    created = api.post("/admin/pricing-rules", body)
    assert created.status_code == 201, created.text
    shown = simplejson.loads(created.text, use_decimal=True)["data"]
    listed = simplejson.loads(api.get("/admin/pricing-rules", limit=100).text, use_decimal=True)
    stored = next(item for item in listed["data"]["items"] if item["id"] == shown["id"])
    for name, amount in zip(names, amounts, strict=True):
        assert shown[name] == amount, name
        assert stored[name] == amount, name


@pytest.mark.parametrize("number", ["1e999999", "1E+999999999", "1e-999999999"])
def test_absurd_exponents_in_minutes_are_422_not_500(
    api: Api, db: Database, company: str, number: str
) -> None:
    raw = simplejson.dumps({"events": [event(company, "ev-x", minutes=0)]})
    raw = raw.replace('"minutes": 0', f'"minutes": {number}')
    with unchanged(db):
        error = _error(
            _raw(api, "/usage/events", raw.encode(), "application/json"), 422, "INVALID_EVENTS"
        )
    assert error["details"]["errors"][0]["field"] == "minutes"


@pytest.mark.parametrize("field", ["expiresAt"])
@pytest.mark.parametrize("value", [1_900_000_000, True, ["2030-01-01"]])
def test_instants_must_be_strings(
    api: Api, db: Database, company: str, field: str, value: Any
) -> None:
    body = {"name": "k", "kind": "platform", "scopes": ["admin"], field: value}
    with unchanged(db):
        error = _error(api.post("/admin/api-keys", body), 400, "VALIDATION_ERROR")
    assert _fields(error) == [field]


def test_a_query_model_stands_for_its_fields(db: Database) -> None:
    """Routes may take their query as a model; its fields are the declared names."""

    class Window(BaseModel):
        time_zone: str = Field(default="UTC", alias="timeZone")
        granularity: str = "day"

    app = create_app(Settings(database_url=db.url), database=db)

    @app.get("/probe")
    def probe(window: Annotated[Window, Query()]) -> dict[str, str]:
        return {"zone": window.time_zone}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/probe?timeZone=Asia/Kolkata&granularity=hour").status_code == 200
        refused = client.get("/probe?time_zone=Asia/Kolkata")
    assert _fields(_error(refused, 400, "VALIDATION_ERROR")) == ["time_zone"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/admin/companies", {"name": " " + "x" * 99 + " ", "billingSystem": "minutes"}, 400),
        ("/admin/companies", {"name": "  x ", "billingSystem": "minutes"}, 400),
        ("/admin/companies", {"name": " " + "x" * 98 + " ", "billingSystem": "minutes"}, 201),
        ("/admin/ats-integrations", {"name": "x" * 200 + " "}, 400),
        ("/admin/ats-integrations", {"name": "   "}, 400),
        ("/admin/ats-integrations", {"name": " Lever "}, 201),
    ],
)
def test_name_lengths_hold_as_sent_and_names_are_stored_trimmed(
    api: Api, path: str, body: dict[str, Any], status: int
) -> None:
    response = api.post(path, body)
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["data"]["name"] == body["name"].strip()
    else:
        assert _fields(_error(response, 400, "VALIDATION_ERROR")) == ["name"]
