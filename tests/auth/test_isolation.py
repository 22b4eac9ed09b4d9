"""Tenant isolation and authentication failures (SPEC section 1, section 2 companyId)."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select, update

from tally.auth.models import ApiKey
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.db.models import Base
from tests.factories import Api, event

INVALID_KEY = "INVALID_API_KEY"


@dataclass(frozen=True)
class World:
    """Two ATS partners, their companies, a lone company and a key for each."""

    ats_a: str
    ats_b: str
    a1: str
    a2: str
    b1: str
    lone: str
    key_a1: str
    key_ats_a: str
    key_ats_b: str


@pytest.fixture
def world(api: Api) -> World:
    ats_a, ats_b = api.ats("Greenhouse"), api.ats("Lever")
    a1 = api.company("Acme Corp", "minutes", ats_a)
    a2 = api.company("Globex", "credits", ats_a)
    b1 = api.company("Initech", "minutes", ats_b)
    lone = api.company("Umbrella", "minutes")
    api.rule(costKey="interview_minutes", baseCost=1, effectiveFrom="2020-01-01T00:00:00Z")
    api.ingest(*(event(company, minutes=5) for company in (a1, a2, b1, lone)))
    return World(
        ats_a=ats_a,
        ats_b=ats_b,
        a1=a1,
        a2=a2,
        b1=b1,
        lone=lone,
        key_a1=api.key("company", a1),
        key_ats_a=api.key("ats", ats_a),
        key_ats_b=api.key("ats", ats_b),
    )


def _companies(response: Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [company["companyId"] for company in response.json()["data"]["companies"]]


def _error(response: Response, status: int, code: str) -> dict[str, Any]:
    """The error object of an enveloped failure with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert body["timestamp"].endswith("Z")
    assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error


def _without_timestamp(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body.pop("timestamp")
    return body


def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, except the lastUsedAt bookkeeping of keys."""
    state = {}
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [column for column in table.columns if column.name != "last_used_at"]
            rows = connection.execute(select(*columns))
            state[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return state


# --- tenant isolation -----------------------------------------------------------------------


def test_company_key_sees_only_itself_whatever_company_id_it_names(api: Api, world: World) -> None:
    assert _companies(api.usage(world.key_a1, start="2026-01-01", end="2026-03-01")) == [world.a1]
    for other in (world.a2, world.b1, world.lone, str(uuid.uuid4())):
        response = api.usage(world.key_a1, start="2026-01-01", end="2026-03-01", companyId=other)
        assert _companies(response) == [world.a1]
        data = response.json()["data"]
        assert data["totalMinutesUsed"] == 5
        assert "totalCreditsUsed" not in data


def test_ats_key_sees_exactly_the_companies_it_manages(api: Api, world: World) -> None:
    window = {"start": "2026-01-01", "end": "2026-03-01"}
    assert sorted(_companies(api.usage(world.key_ats_a, **window))) == sorted([world.a1, world.a2])
    assert _companies(api.usage(world.key_ats_a, companyId=world.a2, **window)) == [world.a2]
    assert _companies(api.usage(world.key_ats_b, **window)) == [world.b1]


def test_ats_key_gets_the_same_403_for_foreign_and_nonexistent_companies(
    api: Api, world: World
) -> None:
    foreign = api.usage(world.key_ats_a, companyId=world.b1)
    unmanaged = api.usage(world.key_ats_a, companyId=world.lone)
    missing = api.usage(world.key_ats_a, companyId=str(uuid.uuid4()))
    for response in (foreign, unmanaged, missing):
        _error(response, 403, "COMPANY_NOT_ACCESSIBLE")
    assert _without_timestamp(foreign) == _without_timestamp(missing)
    assert _without_timestamp(unmanaged) == _without_timestamp(missing)


def test_platform_key_names_any_company_and_gets_403_for_a_missing_one(
    api: Api, world: World
) -> None:
    assert _companies(api.usage(companyId=world.b1)) == [world.b1]
    assert sorted(_companies(api.usage())) == sorted([world.a1, world.a2, world.b1, world.lone])
    _error(api.usage(companyId=str(uuid.uuid4())), 403, "COMPANY_NOT_ACCESSIBLE")


def test_platform_key_without_read_billing_gets_insufficient_scope(api: Api) -> None:
    key = api.key("platform", scopes=["admin", "write:usage"])
    error = _error(api.usage(key), 403, "INSUFFICIENT_SCOPE")
    assert error["details"]["requiredScope"] == "read:billing"


# --- every way of not being authenticated is the same 401 ---------------------------------


def _key_id(api: Api, raw: str) -> str:
    response = api.get("/admin/api-keys", limit=100)
    assert response.status_code == 200, response.text
    (item,) = [i for i in response.json()["data"]["items"] if raw.startswith(i["prefix"])]
    return str(item["id"])


def test_revoked_key_fails_from_the_next_request_on(api: Api, world: World) -> None:
    assert api.usage(world.key_a1).status_code == 200
    revoked = api.client.delete(
        f"/admin/api-keys/{_key_id(api, world.key_a1)}", headers=api.auth(api.platform_key)
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["data"]["revokedAt"] is not None
    _error(api.usage(world.key_a1), 401, INVALID_KEY)
    _error(api.usage(world.key_a1), 401, INVALID_KEY)
    assert api.usage(world.key_ats_a).status_code == 200


def test_a_key_can_revoke_itself_and_is_refused_right_after(api: Api) -> None:
    own = api.key("platform", scopes=["admin", "read:billing"])
    response = api.client.delete(f"/admin/api-keys/{_key_id(api, own)}", headers=api.auth(own))
    assert response.status_code == 200, response.text
    _error(api.get("/admin/api-keys", key=own), 401, INVALID_KEY)


def test_revoking_twice_is_harmless_and_unknown_keys_are_404(api: Api, world: World) -> None:
    path = f"/admin/api-keys/{_key_id(api, world.key_a1)}"
    first = api.client.delete(path, headers=api.auth(api.platform_key))
    second = api.client.delete(path, headers=api.auth(api.platform_key))
    assert second.status_code == 200
    assert second.json()["data"]["revokedAt"] == first.json()["data"]["revokedAt"]
    missing = api.client.delete(
        f"/admin/api-keys/{uuid.uuid4()}", headers=api.auth(api.platform_key)
    )
    _error(missing, 404, "NOT_FOUND")


def test_expired_key_is_refused(api: Api, world: World, db: Database) -> None:
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    key = api.key("company", world.a1, expiresAt=soon)
    assert api.usage(key).status_code == 200
    with db.transaction(write=True) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(_key_id(api, key)))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    _error(api.usage(key), 401, INVALID_KEY)


def _from(api: Api, address: str) -> Api:
    """The same app and platform key, seen from another client address."""
    client = TestClient(api.client.app, client=(address, 50000), raise_server_exceptions=False)
    return Api(client, api.platform_key)


def test_the_test_client_address_is_what_the_service_sees(api: Api) -> None:
    # TestClient's default address is the string "testclient", not an IP, so every
    # allowedIps test below talks from an explicit address instead.
    remote = _from(api, "203.0.113.7")
    inside = api.key("platform", scopes=["read:billing"], allowedIps=["203.0.113.7"])
    assert remote.usage(inside).status_code == 200
    _error(api.usage(inside), 401, INVALID_KEY)


ADDRESSES = [
    ("203.0.113.7", ["10.0.0.0/8"], 401),
    ("203.0.113.7", ["203.0.113.0/25", "10.0.0.0/8"], 200),
    ("203.0.113.200", ["203.0.113.0/25"], 401),
    ("203.0.113.7", ["203.0.113.7"], 200),
    ("203.0.113.8", ["203.0.113.7"], 401),
    ("2001:db8::1", ["2001:db8::/32"], 200),
    ("2001:db9::1", ["2001:db8::/32"], 401),
    ("203.0.113.7", ["2001:db8::/32"], 401),
]


def test_allowed_ips(api: Api, world: World, subtests: pytest.Subtests) -> None:
    for address, allowed, status in ADDRESSES:
        with subtests.test(address=address, allowed=allowed):
            key = api.key("company", world.a1, allowedIps=allowed)
            response = _from(api, address).usage(key)
            assert response.status_code == status, response.text
            if status == 401:
                _error(response, 401, INVALID_KEY)


def test_forwarded_headers_do_not_fake_an_allowed_address(api: Api, world: World) -> None:
    key = api.key("company", world.a1, allowedIps=["10.0.0.0/8"])
    remote = _from(api, "203.0.113.7")
    headers = api.auth(key) | {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}
    _error(remote.client.get("/billing/usage", headers=headers), 401, INVALID_KEY)


def _bad_credentials(api: Api, world: World, db: Database) -> dict[str, dict[str, str]]:
    """Authorization headers that must all fail the same way."""
    revoked = api.key("company", world.a1)
    response = api.client.delete(
        f"/admin/api-keys/{_key_id(api, revoked)}", headers=api.auth(api.platform_key)
    )
    assert response.status_code == 200, response.text
    expired = api.key("company", world.a1, expiresAt=(utcnow() + timedelta(hours=1)).isoformat())
    with db.transaction(write=True) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(_key_id(api, expired)))
            .values(expires_at=utcnow() - timedelta(days=1))
        )
    wrong_ip = api.key("company", world.a1, allowedIps=["10.0.0.0/8"])
    valid = world.key_a1
    flipped = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    return {
        "revoked": api.auth(revoked),
        "expired": api.auth(expired),
        "wrong ip": api.auth(wrong_ip),
        "unknown": api.auth("sk_live_" + "a" * 43),
        "same lookup prefix, other secret": api.auth(flipped),
        "too short": api.auth(valid[:-1]),
        "too long": api.auth(valid + "x"),
        "bad character": api.auth(valid[:-1] + "!"),
        "other prefix": api.auth("sk_prod_" + valid[8:]),
        "garbage": api.auth("hello"),
        "empty bearer": {"Authorization": "Bearer "},
        "bearer only": {"Authorization": "Bearer"},
        "missing": {},
        "basic scheme": {"Authorization": f"Basic {valid}"},
        "token scheme": {"Authorization": f"Token {valid}"},
        "no scheme": {"Authorization": valid},
        "key in another header": {"X-Api-Key": valid},
    }


def test_every_unauthenticated_request_gets_the_identical_401(
    api: Api, world: World, db: Database
) -> None:
    # From a real address, so that the wrong-IP key fails on its range, not on the
    # test client's placeholder address.
    remote = _from(api, "203.0.113.7")
    bodies = {}
    for label, headers in _bad_credentials(api, world, db).items():
        response = remote.client.get("/billing/usage", headers=headers)
        _error(response, 401, INVALID_KEY)
        bodies[label] = _without_timestamp(response)
    reference = bodies["missing"]
    for label, body in bodies.items():
        assert body == reference, label
    # The key that was not tampered with still works: the failures above are the keys'.
    assert remote.usage(world.key_a1).status_code == 200


def test_unauthenticated_writes_are_refused_before_the_body_is_looked_at(
    api: Api, world: World, db: Database
) -> None:
    before = _snapshot(db)
    no_key = {"Content-Type": "application/json"}
    responses = [
        api.client.post("/usage/events", content=b"{not json", headers=no_key),
        api.client.post("/admin/companies", json={"name": "x"}, headers=no_key),
        api.client.get("/admin/companies/not-a-uuid"),
        api.client.post("/usage/events/anything/void"),
        api.client.delete(f"/admin/api-keys/{uuid.uuid4()}"),
    ]
    for response in responses:
        _error(response, 401, INVALID_KEY)
    assert _snapshot(db) == before


# --- scopes ----------------------------------------------------------------------------------

ADMIN_CALLS: list[tuple[str, str, Any]] = [
    ("GET", "/admin/companies", None),
    ("POST", "/admin/companies", {"name": "Hooli", "billingSystem": "minutes"}),
    ("GET", "/admin/ats-integrations", None),
    ("POST", "/admin/ats-integrations", {"name": "Workday"}),
    ("GET", "/admin/api-keys", None),
    ("POST", "/admin/api-keys", {"name": "x", "kind": "platform", "scopes": ["admin"]}),
    ("GET", "/admin/pricing-rules", None),
    ("POST", "/admin/pricing-rules", {"costKey": "interview_minutes", "baseCost": 1}),
]


def _call(api: Api, key: str, method: str, path: str, body: Any) -> Response:
    if method == "POST":
        return api.post(path, body, key=key)
    return api.client.request(method, path, headers=api.auth(key))


def _assert_forbidden(response: Response, scope: str) -> None:
    error = _error(response, 403, "INSUFFICIENT_SCOPE")
    assert error["details"]["requiredScope"] == scope


def test_company_and_ats_keys_cannot_administer(api: Api, world: World, db: Database) -> None:
    before = _snapshot(db)
    for key in (world.key_a1, world.key_ats_a):
        for method, path, body in ADMIN_CALLS:
            _assert_forbidden(_call(api, key, method, path, body), "admin")
        for path in (f"/admin/companies/{world.a1}", f"/admin/companies/{world.b1}"):
            _assert_forbidden(api.client.get(path, headers=api.auth(key)), "admin")
        patch = api.client.patch(
            f"/admin/companies/{world.a1}", json={"name": "Mine now"}, headers=api.auth(key)
        )
        _assert_forbidden(patch, "admin")
        delete = api.client.delete(f"/admin/api-keys/{_key_id(api, key)}", headers=api.auth(key))
        _assert_forbidden(delete, "admin")
    assert _snapshot(db) == before


def test_company_and_ats_keys_cannot_ingest_or_void(api: Api, world: World, db: Database) -> None:
    stored = event(world.a1, "ev-stored")
    api.ingest(stored)
    before = _snapshot(db)
    for key in (world.key_a1, world.key_ats_a):
        posted = api.post("/usage/events", {"events": [event(world.a1)]}, key=key)
        _assert_forbidden(posted, "write:usage")
        void = api.client.post("/usage/events/ev-stored/void", headers=api.auth(key))
        _assert_forbidden(void, "write:usage")
    assert _snapshot(db) == before


def test_platform_key_without_admin_cannot_administer(api: Api, world: World) -> None:
    key = api.key("platform", scopes=["read:billing", "write:usage"])
    for method, path, body in ADMIN_CALLS:
        _assert_forbidden(_call(api, key, method, path, body), "admin")
    assert api.usage(key).status_code == 200


def test_platform_key_without_write_usage_cannot_ingest(api: Api, world: World) -> None:
    key = api.key("platform", scopes=["admin", "read:billing"])
    response = api.post("/usage/events", {"events": [event(world.a1)]}, key=key)
    _assert_forbidden(response, "write:usage")
