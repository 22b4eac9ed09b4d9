"""API keys: format, shown once, stored as a hash, creation rules, the CLI (SPEC 1, 4, 5)."""

import hashlib
import ipaddress
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx2 import Response
from sqlalchemy import select, text
from typer.testing import CliRunner

from tally.auth.models import ApiKey
from tally.cli import app as cli_app
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.db.models import Base
from tests.factories import Api

LIVE = re.compile(r"^sk_live_[0-9A-Za-z]{43}$")
TEST = re.compile(r"^sk_test_[0-9A-Za-z]{43}$")


def _create(api: Api, **body: Any) -> Response:
    return api.post("/admin/api-keys", {"name": "k"} | body)


def _created(api: Api, **body: Any) -> dict[str, Any]:
    response = _create(api, **body)
    assert response.status_code == 201, response.text
    assert response.json()["success"] is True
    data: dict[str, Any] = response.json()["data"]
    return data


def _listed(api: Api) -> list[dict[str, Any]]:
    response = api.get("/admin/api-keys", limit=100)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]["items"]
    return items


def _invalid(response: Response, field: str | None = None) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "VALIDATION_ERROR"
    if field is not None:
        fields = [error["field"] for error in body["error"]["details"]["errors"]]
        assert any(field in name for name in fields), fields


def _networks(entries: list[str]) -> list[Any]:
    return [ipaddress.ip_network(entry) for entry in entries]


def _key_rows(db: Database) -> list[ApiKey]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(ApiKey)))


# --- format ----------------------------------------------------------------------------------


def test_live_keys_have_the_documented_format_and_differ(api: Api) -> None:
    keys = [_created(api, kind="platform", scopes=["read:billing"])["key"] for _ in range(10)]
    for key in keys:
        assert LIVE.fullmatch(key), key
    assert len(set(keys)) == len(keys)
    # 43 characters of a 62-letter alphabet: every letter class shows up across keys.
    letters = "".join(key[8:] for key in keys)
    assert re.search(r"[0-9]", letters)
    assert re.search(r"[A-Z]", letters)
    assert re.search(r"[a-z]", letters)


def test_environment_chooses_the_prefix_and_both_work(api: Api) -> None:
    explicit_live = _created(api, kind="platform", scopes=["read:billing"], environment="live")
    test = _created(api, kind="platform", scopes=["read:billing"], environment="test")
    assert LIVE.fullmatch(explicit_live["key"])
    assert TEST.fullmatch(test["key"])
    assert test["prefix"].startswith("sk_test_")
    for key in (explicit_live["key"], test["key"]):
        assert api.usage(key).status_code == 200
    _invalid(_create(api, kind="platform", scopes=["read:billing"], environment="prod"))


def test_creation_answer_carries_the_key_once_with_the_rest(api: Api) -> None:
    company = api.company()
    expires = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    data = _created(
        api,
        name="Acme billing export",
        kind="company",
        companyId=company,
        scopes=["read:billing"],
        expiresAt=expires.isoformat(),
        allowedIps=["10.0.0.0/8", "192.0.2.1"],
    )
    assert LIVE.fullmatch(data["key"])
    assert data["key"].startswith(data["prefix"])
    assert len(data["prefix"]) < len(data["key"]) - 32
    uuid.UUID(data["id"])
    assert data["name"] == "Acme billing export"
    assert data["kind"] == "company"
    assert data["companyId"] == company
    assert data["atsIntegrationId"] is None
    assert data["scopes"] == ["read:billing"]
    assert datetime.fromisoformat(data["expiresAt"]) == expires
    assert data["expiresAt"].endswith("Z")
    assert _networks(data["allowedIps"]) == _networks(["10.0.0.0/8", "192.0.2.1"])
    assert data["revokedAt"] is None
    assert data["lastUsedAt"] is None
    assert data["createdAt"].endswith("Z")


def test_list_shows_prefix_but_never_the_key_or_its_hash(api: Api, db: Database) -> None:
    created = _created(api, kind="platform", scopes=["read:billing"])
    raw = created["key"]
    digest = hashlib.sha256(raw.encode()).hexdigest()
    response = api.get("/admin/api-keys", limit=100)
    assert raw not in response.text
    assert digest not in response.text
    assert digest.upper() not in response.text
    (item,) = [item for item in _listed(api) if item["id"] == created["id"]]
    assert item["prefix"] == created["prefix"]
    assert "key" not in item
    assert not any("hash" in name.lower() for name in item)
    assert {k: v for k, v in created.items() if k not in ("key", "lastUsedAt")} == {
        k: v for k, v in item.items() if k != "lastUsedAt"
    }
    # Nor does revoking echo it.
    revoked = api.client.delete(
        f"/admin/api-keys/{created['id']}", headers=api.auth(api.platform_key)
    )
    assert raw not in revoked.text
    assert digest not in revoked.text


def test_only_the_sha256_of_the_key_is_stored(api: Api, db: Database) -> None:
    created = _created(api, kind="platform", scopes=["read:billing"])
    raw = created["key"]
    (row,) = [row for row in _key_rows(db) if str(row.id) == created["id"]]
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    secret = raw[len(created["prefix"]) :]
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for values in connection.execute(table.select()):
                for value in values:
                    assert raw not in str(value), table.name
                    assert secret not in str(value), table.name
        stored = connection.execute(
            text("SELECT key_hash FROM api_keys WHERE key_hash = :h"),
            {"h": hashlib.sha256(raw.encode()).hexdigest()},
        ).all()
    assert len(stored) == 1


# --- what may be created -----------------------------------------------------------------------


UNKNOWN_SCOPES = [
    ["read:billing", "bogus"],
    ["READ:BILLING"],
    ["read"],
    ["billing:read"],
    ["*"],
    [""],
]


def test_unknown_scope_is_refused(api: Api, subtests: pytest.Subtests) -> None:
    for scopes in UNKNOWN_SCOPES:
        with subtests.test(scopes=scopes):
            _invalid(_create(api, kind="platform", scopes=scopes), "scopes")
    assert len(_listed(api)) == 1


FORBIDDEN_SCOPES = [
    ["write:usage"],
    ["admin"],
    ["read:billing", "write:usage"],
    ["read:billing", "admin"],
    ["admin", "write:usage", "read:billing"],
]


@pytest.mark.parametrize("kind", ["company", "ats"])
def test_company_and_ats_keys_may_hold_only_read_billing(
    api: Api, kind: str, subtests: pytest.Subtests
) -> None:
    owner = api.company() if kind == "company" else api.ats()
    owner_field = "companyId" if kind == "company" else "atsIntegrationId"
    for scopes in FORBIDDEN_SCOPES:
        with subtests.test(scopes=scopes):
            _invalid(_create(api, kind=kind, scopes=scopes, **{owner_field: owner}), "scopes")
    assert len(_listed(api)) == 1
    assert _created(api, kind=kind, scopes=["read:billing"], **{owner_field: owner})


def test_platform_keys_may_hold_every_scope(api: Api) -> None:
    data = _created(api, kind="platform", scopes=["admin", "write:usage", "read:billing"])
    assert sorted(data["scopes"]) == ["admin", "read:billing", "write:usage"]


def test_owner_rules(api: Api) -> None:
    company = api.company()
    ats = api.ats()
    scopes = ["read:billing"]
    _invalid(_create(api, kind="company", scopes=scopes), "companyId")
    _invalid(_create(api, kind="company", scopes=scopes, companyId=str(uuid.uuid4())), "companyId")
    _invalid(_create(api, kind="company", scopes=scopes, atsIntegrationId=ats))
    _invalid(_create(api, kind="company", scopes=scopes, companyId=company, atsIntegrationId=ats))
    _invalid(_create(api, kind="ats", scopes=scopes), "atsIntegrationId")
    _invalid(_create(api, kind="ats", scopes=scopes, atsIntegrationId=str(uuid.uuid4())))
    _invalid(_create(api, kind="ats", scopes=scopes, companyId=company))
    _invalid(_create(api, kind="platform", scopes=scopes, companyId=company))
    _invalid(_create(api, kind="platform", scopes=scopes, atsIntegrationId=ats))
    _invalid(_create(api, kind="company", scopes=scopes, companyId="not-a-uuid"), "companyId")
    _invalid(_create(api, kind="partner", scopes=scopes), "kind")
    _invalid(api.post("/admin/api-keys", {"kind": "platform", "scopes": scopes}), "name")
    _invalid(_create(api, kind="platform", scopes=scopes, color="blue"), "color")
    assert _created(api, kind="company", scopes=scopes, companyId=company)["companyId"] == company
    assert _created(api, kind="ats", scopes=scopes, atsIntegrationId=ats)["atsIntegrationId"] == ats
    assert _created(api, kind="platform", scopes=scopes)["companyId"] is None
    assert len(_listed(api)) == 4  # the fixture's key and the three above


def test_expires_at_must_be_in_the_future(api: Api) -> None:
    scopes = ["read:billing"]
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    _invalid(_create(api, kind="platform", scopes=scopes, expiresAt=past), "expiresAt")
    _invalid(_create(api, kind="platform", scopes=scopes, expiresAt="2001-01-01T00:00:00Z"))
    _invalid(_create(api, kind="platform", scopes=scopes, expiresAt="next week"), "expiresAt")
    future = (utcnow() + timedelta(days=1)).isoformat()
    data = _created(api, kind="platform", scopes=scopes, expiresAt=future)
    assert api.usage(data["key"]).status_code == 200


BAD_ALLOWED_IPS: list[Any] = [
    ["not-an-ip"],
    ["10.0.0.0/33"],
    ["256.0.0.1"],
    ["10.0.0.0/8", "nope"],
    ["2001:db8::/129"],
    [""],
    "10.0.0.1",
    [12],
]


def test_invalid_allowed_ips_are_refused(api: Api, subtests: pytest.Subtests) -> None:
    for allowed in BAD_ALLOWED_IPS:
        with subtests.test(allowed=allowed):
            response = _create(api, kind="platform", scopes=["read:billing"], allowedIps=allowed)
            _invalid(response, "allowedIps")
    assert len(_listed(api)) == 1


def test_valid_allowed_ips_are_kept(api: Api) -> None:
    allowed = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]
    data = _created(api, kind="platform", scopes=["read:billing"], allowedIps=allowed)
    # Single addresses may come back as /32 or /128 ranges: the same networks.
    assert _networks(data["allowedIps"]) == _networks(allowed)


def test_last_used_at_is_set_after_use(api: Api) -> None:
    company = api.company()
    reader = _created(api, kind="company", companyId=company, scopes=["read:billing"])
    writer = _created(api, kind="platform", scopes=["write:usage"])
    listed = {item["id"]: item for item in _listed(api)}
    assert listed[reader["id"]]["lastUsedAt"] is None
    assert listed[writer["id"]]["lastUsedAt"] is None
    before = utcnow().replace(microsecond=0)
    assert api.usage(reader["key"]).status_code == 200
    event = {
        "id": "ev-1",
        "companyId": company,
        "costKey": "interview_minutes",
        "occurredAt": "2026-01-01T00:00:00Z",
    }
    assert api.post("/usage/events", {"events": [event]}, key=writer["key"]).status_code == 200
    after = utcnow() + timedelta(seconds=1)
    listed = {item["id"]: item for item in _listed(api)}
    for created in (reader, writer):
        used = datetime.fromisoformat(listed[created["id"]]["lastUsedAt"])
        assert before <= used <= after


# --- the command line ------------------------------------------------------------------------


def _cli(db: Database, *args: str) -> Any:
    return CliRunner().invoke(cli_app, ["keys", "create", *args, "--database-url", db.url])


def test_cli_prints_only_a_working_key(api: Api, db: Database) -> None:
    result = _cli(db, "--kind", "platform", "--scope", "read:billing", "--scope", "admin")
    assert result.exit_code == 0, result.output
    assert LIVE.fullmatch(result.stdout.strip())
    assert result.stdout == result.stdout.strip() + "\n"
    key = result.stdout.strip()
    assert api.usage(key).status_code == 200
    assert api.get("/admin/companies", key=key).status_code == 200
    (item,) = [item for item in _listed(api) if key.startswith(item["prefix"])]
    assert item["kind"] == "platform"
    assert sorted(item["scopes"]) == ["admin", "read:billing"]


def test_cli_company_key_sees_only_its_company(api: Api, db: Database) -> None:
    mine = api.company("Acme Corp")
    api.company("Globex")
    result = _cli(
        db, "--kind", "company", "--company", mine, "--scope", "read:billing", "--name", "acme"
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert LIVE.fullmatch(key)
    response = api.usage(key)
    assert response.status_code == 200, response.text
    assert [c["companyId"] for c in response.json()["data"]["companies"]] == [mine]


def test_cli_ats_key_and_test_environment(api: Api, db: Database) -> None:
    ats = api.ats()
    managed = api.company("Acme Corp", ats=ats)
    result = _cli(
        db, "--kind", "ats", "--ats", ats, "--scope", "read:billing", "--environment", "test"
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert TEST.fullmatch(key)
    response = api.usage(key)
    assert [c["companyId"] for c in response.json()["data"]["companies"]] == [managed]


@pytest.mark.parametrize(
    "args",
    [
        ["--kind", "company", "--scope", "read:billing"],
        ["--kind", "company", "--company", "not-a-uuid", "--scope", "read:billing"],
        ["--kind", "ats", "--ats", str(uuid.uuid4()), "--scope", "read:billing"],
        ["--kind", "platform", "--scope", "bogus"],
        ["--kind", "platform"],
    ],
)
def test_cli_refuses_bad_keys_and_prints_no_key(api: Api, db: Database, args: list[str]) -> None:
    before = len(_listed(api))
    result = _cli(db, *args)
    assert result.exit_code != 0
    assert "sk_" not in result.stdout
    assert len(_listed(api)) == before
