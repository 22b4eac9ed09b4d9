"""Administration of ATS integrations and companies, and list pagination (SPEC section 4)."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx2 import Response

from tally.companies.models import AtsIntegration, Company
from tally.core.instants import utcnow
from tally.db.engine import Database
from tests.factories import Api, event

LISTS = [
    "/admin/ats-integrations",
    "/admin/companies",
    "/admin/api-keys",
    "/admin/pricing-rules",
]


def _ok(response: Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True
    assert body["error"] is None
    assert body["timestamp"].endswith("Z")
    assert set(body) == {"success", "data", "error", "timestamp"}
    return body["data"]


def _failed(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert body["timestamp"].endswith("Z")
    assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


def _invalid(response: Response, field: str | None = None) -> None:
    error = _failed(response, 400, "VALIDATION_ERROR")
    if field is not None:
        fields = [item["field"] for item in error["details"]["errors"]]
        assert any(field in name for name in fields), fields


def _patch(api: Api, company_id: str, body: Any) -> Response:
    return api.client.patch(
        f"/admin/companies/{company_id}", json=body, headers=api.auth(api.platform_key)
    )


def _instant(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# --- ATS integrations ---------------------------------------------------------------------------


def test_create_and_list_ats_integrations(api: Api) -> None:
    before = utcnow() - timedelta(seconds=1)
    created = _ok(api.post("/admin/ats-integrations", {"name": "Greenhouse"}), 201)
    assert set(created) == {"id", "name", "createdAt"}
    uuid.UUID(created["id"])
    assert created["name"] == "Greenhouse"
    assert before <= _instant(created["createdAt"]) <= utcnow() + timedelta(seconds=1)
    listed = _ok(api.get("/admin/ats-integrations"))
    assert listed["items"] == [created]


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": None}, {"name": 3}, {"name": "Lever", "region": "eu"}, []]
)
def test_invalid_ats_integrations_are_refused(api: Api, body: Any) -> None:
    _invalid(api.post("/admin/ats-integrations", body))
    assert _ok(api.get("/admin/ats-integrations"))["items"] == []


# --- companies -----------------------------------------------------------------------------------


def test_create_get_and_list_companies(api: Api) -> None:
    ats = api.ats()
    created = _ok(
        api.post(
            "/admin/companies",
            {"name": "Acme Corp", "billingSystem": "credits", "atsIntegrationId": ats},
        ),
        201,
    )
    assert set(created) == {"id", "name", "billingSystem", "atsIntegrationId", "createdAt"}
    uuid.UUID(created["id"])
    assert created["name"] == "Acme Corp"
    assert created["billingSystem"] == "credits"
    assert created["atsIntegrationId"] == ats
    _instant(created["createdAt"])
    lone = _ok(api.post("/admin/companies", {"name": "Globex", "billingSystem": "minutes"}), 201)
    assert lone["atsIntegrationId"] is None
    assert _ok(api.get(f"/admin/companies/{created['id']}")) == created
    assert _ok(api.get(f"/admin/companies/{lone['id']}")) == lone
    assert _ok(api.get("/admin/companies"))["items"] == [created, lone]


@pytest.mark.parametrize("name", ["Ab", "x" * 100, "é" * 100, "Zoë & Søn GmbH", "株式会社"])
def test_company_names_of_2_to_100_characters(api: Api, name: str) -> None:
    created = _ok(api.post("/admin/companies", {"name": name, "billingSystem": "minutes"}), 201)
    assert created["name"] == name
    assert _ok(api.get(f"/admin/companies/{created['id']}"))["name"] == name


BAD_COMPANIES: list[tuple[dict[str, Any], str | None]] = [
    ({"name": "A", "billingSystem": "minutes"}, "name"),
    ({"name": "x" * 101, "billingSystem": "minutes"}, "name"),
    ({"name": "", "billingSystem": "minutes"}, "name"),
    ({"name": None, "billingSystem": "minutes"}, "name"),
    ({"name": 42, "billingSystem": "minutes"}, "name"),
    ({"billingSystem": "minutes"}, "name"),
    ({"name": "Acme Corp"}, "billingSystem"),
    ({"name": "Acme Corp", "billingSystem": "Minutes"}, "billingSystem"),
    ({"name": "Acme Corp", "billingSystem": "seats"}, "billingSystem"),
    ({"name": "Acme Corp", "billingSystem": None}, "billingSystem"),
    (
        {"name": "Acme Corp", "billingSystem": "minutes", "atsIntegrationId": "x"},
        "atsIntegrationId",
    ),
    ({"name": "Acme Corp", "billingSystem": "minutes", "plan": "gold"}, "plan"),
    ({"name": "Acme Corp", "billingSystem": "minutes", "billing_system": "x"}, None),
]


def test_invalid_companies_are_refused(api: Api, subtests: pytest.Subtests) -> None:
    for body, field in BAD_COMPANIES:
        with subtests.test(body=body):
            _invalid(api.post("/admin/companies", body), field)
            assert _ok(api.get("/admin/companies"))["items"] == []


def test_unknown_ats_integration_is_a_validation_error(api: Api) -> None:
    body = {"name": "Acme Corp", "billingSystem": "minutes", "atsIntegrationId": str(uuid.uuid4())}
    _invalid(api.post("/admin/companies", body), "atsIntegrationId")
    assert _ok(api.get("/admin/companies"))["items"] == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"[]", b'"Acme"', b"null", b"[" * 50_000 + b"]" * 50_000],
    ids=lambda body: repr(body[:20]),
)
def test_company_body_that_is_not_an_object_is_a_validation_error(api: Api, body: bytes) -> None:
    headers = api.auth(api.platform_key) | {"Content-Type": "application/json"}
    _invalid(api.client.post("/admin/companies", content=body, headers=headers))


def test_unknown_and_malformed_company_ids(api: Api) -> None:
    _failed(api.get(f"/admin/companies/{uuid.uuid4()}"), 404, "NOT_FOUND")
    _failed(_patch(api, str(uuid.uuid4()), {"name": "Ghost"}), 404, "NOT_FOUND")
    for bad in ("not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"):
        _invalid(api.get(f"/admin/companies/{bad}"))
        _invalid(_patch(api, bad, {"name": "Ghost"}))


# --- PATCH ---------------------------------------------------------------------------------------


def test_patch_changes_any_subset_of_fields(api: Api) -> None:
    ats_a, ats_b = api.ats("Greenhouse"), api.ats("Lever")
    company = api.company("Acme Corp", "minutes", ats_a)
    original = _ok(api.get(f"/admin/companies/{company}"))

    renamed = _ok(_patch(api, company, {"name": "Acme Inc"}))
    assert renamed == original | {"name": "Acme Inc"}
    switched = _ok(_patch(api, company, {"billingSystem": "credits"}))
    assert switched == renamed | {"billingSystem": "credits"}
    moved = _ok(_patch(api, company, {"atsIntegrationId": ats_b}))
    assert moved == switched | {"atsIntegrationId": ats_b}
    unchanged = _ok(_patch(api, company, {}))
    assert unchanged == moved
    everything = _ok(
        _patch(
            api,
            company,
            {"name": "Acme Corp", "billingSystem": "minutes", "atsIntegrationId": ats_a},
        )
    )
    assert everything == original
    assert _ok(api.get(f"/admin/companies/{company}")) == original


BAD_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({"name": "A"}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": None}, "name"),
    ({"billingSystem": "seats"}, "billingSystem"),
    ({"billingSystem": None}, "billingSystem"),
    ({"atsIntegrationId": "nope"}, "atsIntegrationId"),
    ({"atsIntegrationId": str(uuid.uuid4())}, "atsIntegrationId"),
    ({"createdAt": "2020-01-01T00:00:00Z"}, "createdAt"),
    ({"id": str(uuid.uuid4())}, "id"),
]


def test_invalid_patches_change_nothing(api: Api, subtests: pytest.Subtests) -> None:
    company = api.company("Acme Corp", "minutes", api.ats())
    original = _ok(api.get(f"/admin/companies/{company}"))
    for body, field in BAD_PATCHES:
        with subtests.test(body=body):
            _invalid(_patch(api, company, body), field)
            assert _ok(api.get(f"/admin/companies/{company}")) == original


def test_detaching_the_ats_hides_the_company_from_its_key(api: Api) -> None:
    ats = api.ats()
    company = api.company("Acme Corp", "minutes", ats)
    other = api.company("Globex", "minutes", ats)
    api.ingest(event(company, minutes=7))
    ats_key = api.key("ats", ats)
    seen = _ok(api.usage(ats_key, start="2026-02-01", end="2026-03-01"))
    assert sorted(c["companyId"] for c in seen["companies"]) == sorted([company, other])
    assert seen["totalMinutesUsed"] == 7

    detached = _ok(_patch(api, company, {"atsIntegrationId": None}))
    assert detached["atsIntegrationId"] is None
    assert detached["name"] == "Acme Corp"
    seen = _ok(api.usage(ats_key, start="2026-02-01", end="2026-03-01"))
    assert [c["companyId"] for c in seen["companies"]] == [other]
    assert seen["totalMinutesUsed"] == 0
    _failed(api.usage(ats_key, companyId=company), 403, "COMPANY_NOT_ACCESSIBLE")
    # The company itself and the platform still see its usage.
    platform = _ok(api.usage(companyId=company, start="2026-02-01", end="2026-03-01"))
    assert platform["totalMinutesUsed"] == 7


def test_attaching_to_another_ats_moves_the_company(api: Api) -> None:
    first, second = api.ats("Greenhouse"), api.ats("Lever")
    company = api.company("Acme Corp", "minutes", first)
    first_key, second_key = api.key("ats", first), api.key("ats", second)
    _ok(_patch(api, company, {"atsIntegrationId": second}))
    assert _ok(api.usage(first_key))["companies"] == []
    assert [c["companyId"] for c in _ok(api.usage(second_key))["companies"]] == [company]


def test_billing_system_change_shows_in_the_usage_report(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    _ok(_patch(api, company, {"billingSystem": "credits"}))
    (row,) = _ok(api.usage(companyId=company))["companies"]
    assert row["billingSystem"] == "credits"


# --- pagination ----------------------------------------------------------------------------------


def _page(api: Api, path: str, **params: Any) -> dict[str, Any]:
    data: dict[str, Any] = _ok(api.get(path, **params))
    assert set(data) == {"items", "pagination"}
    return data


def test_company_pagination_walks_every_item_once_in_creation_order(api: Api) -> None:
    ids = [api.company(f"Company {index:02d}") for index in range(25)]
    first = _page(api, "/admin/companies")
    assert first["pagination"] == {
        "total": 25,
        "page": 1,
        "limit": 20,
        "totalPages": 2,
        "hasNextPage": True,
        "hasPreviousPage": False,
    }
    assert [c["id"] for c in first["items"]] == ids[:20]
    second = _page(api, "/admin/companies", page=2)
    assert second["pagination"] == {
        "total": 25,
        "page": 2,
        "limit": 20,
        "totalPages": 2,
        "hasNextPage": False,
        "hasPreviousPage": True,
    }
    assert [c["id"] for c in second["items"]] == ids[20:]

    walked = []
    for page in range(1, 10):
        data = _page(api, "/admin/companies", page=page, limit=3)
        assert data["pagination"]["totalPages"] == 9
        assert data["pagination"]["hasNextPage"] is (page < 9)
        assert data["pagination"]["hasPreviousPage"] is (page > 1)
        walked += [c["id"] for c in data["items"]]
    assert walked == ids

    everything = _page(api, "/admin/companies", limit=100)
    assert [c["id"] for c in everything["items"]] == ids
    assert everything["pagination"]["totalPages"] == 1
    assert everything["pagination"]["hasNextPage"] is False

    beyond = _page(api, "/admin/companies", page=4, limit=10)
    assert beyond["items"] == []
    assert beyond["pagination"]["total"] == 25
    assert beyond["pagination"]["hasNextPage"] is False
    assert beyond["pagination"]["hasPreviousPage"] is True


def test_same_instant_is_ordered_by_id(api: Api, db: Database) -> None:
    at = utcnow().replace(microsecond=0) - timedelta(days=1)
    ats_ids = sorted(uuid.uuid4() for _ in range(5))
    company_ids = sorted(uuid.uuid4() for _ in range(5))
    with db.transaction(write=True) as session:
        for ats_id in reversed(ats_ids):
            session.add(AtsIntegration(id=ats_id, name=f"ATS {ats_id}", created_at=at))
        for company_id in reversed(company_ids):
            session.add(
                Company(
                    id=company_id,
                    name="Same Time",
                    billing_system="minutes",
                    ats_integration_id=None,
                    created_at=at,
                )
            )
    later = api.company("Later")
    earlier_still = at - timedelta(seconds=1)
    with db.transaction(write=True) as session:
        session.add(
            Company(
                id=uuid.UUID(int=0),
                name="Earliest",
                billing_system="minutes",
                ats_integration_id=None,
                created_at=earlier_still,
            )
        )
    companies = [c["id"] for c in _page(api, "/admin/companies")["items"]]
    assert companies == [str(uuid.UUID(int=0)), *map(str, company_ids), later]
    ats = [a["id"] for a in _page(api, "/admin/ats-integrations")["items"]]
    assert ats == [str(ats_id) for ats_id in ats_ids]
    # Pages cut between equal instants without skipping or repeating.
    paged = [
        c["id"]
        for page in (1, 2, 3, 4)
        for c in _page(api, "/admin/companies", page=page, limit=2)["items"]
    ]
    assert paged == companies


def test_empty_list(api: Api) -> None:
    assert _page(api, "/admin/companies") == {
        "items": [],
        "pagination": {
            "total": 0,
            "page": 1,
            "limit": 20,
            "totalPages": 0,
            "hasNextPage": False,
            "hasPreviousPage": False,
        },
    }


BAD_PAGING: list[tuple[dict[str, Any], str]] = [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": -1}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "1.5"}, "limit"),
    ({"limit": ""}, "limit"),
    ({"page": 0}, "page"),
    ({"page": -3}, "page"),
    ({"page": "first"}, "page"),
    ({"page": "99999999999999999999999999"}, "page"),
]


@pytest.mark.parametrize("path", LISTS)
def test_page_and_limit_out_of_bounds(api: Api, path: str, subtests: pytest.Subtests) -> None:
    for params, field in BAD_PAGING:
        with subtests.test(params=params):
            _invalid(api.get(path, **params), field)


@pytest.mark.parametrize("path", LISTS)
def test_every_list_is_paginated_with_bounds_1_to_100(api: Api, path: str) -> None:
    for limit in (1, 100):
        data = _page(api, path, limit=limit)
        assert data["pagination"]["limit"] == limit
        assert data["pagination"]["page"] == 1
    assert _page(api, path)["pagination"]["limit"] == 20
