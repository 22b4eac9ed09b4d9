"""Webhook endpoints: the secret shown once, the target policy, lists without secrets."""

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tally.app import create_app
from tally.db.engine import Database
from tally.settings import Settings
from tests.factories import Api
from tests.webhooks.helpers import endpoint


def create(api: Api, body: dict[str, Any]):
    return api.post("/admin/webhook-endpoints", body)


def test_the_secret_is_shown_once_and_never_cached(hooks: Api):
    company = hooks.company()
    response = create(hooks, {"url": "https://8.8.8.8/hooks", "companyId": company})
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    data = response.json()["data"]
    assert data["url"] == "https://8.8.8.8/hooks"
    assert data["companyId"] == company
    assert data["atsIntegrationId"] is None
    secret = data["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    other = create(hooks, {"url": "https://8.8.8.8/hooks"}).json()["data"]["secret"]
    assert other != secret
    listed = hooks.get("/admin/webhook-endpoints")
    assert listed.status_code == 200
    assert listed.json()["data"]["pagination"]["total"] == 2
    assert "secret" not in listed.json()["data"]["items"][0]
    for text in (listed.text, hooks.get("/admin/webhook-deliveries").text):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text


@pytest.fixture
def strict(db: Database):
    """A server with the default policy: no private targets."""
    app = create_app(Settings(database_url=db.url, webhook_worker=False), database=db)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api.bootstrap(client, db)


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/hooks",
        "http://127.0.0.1:9/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[fe80::1]/hooks",
        "https://0.0.0.0/hooks",
        "https://localhost/hooks",
        "https://2130706433/hooks",
        "https://0x7f.1/hooks",
        "ftp://8.8.8.8/hooks",
        "https://user:password@8.8.8.8/hooks",
        "https:///hooks",
        "https://8.8.8.8:99999/hooks",
        "not a url",
        # Not host names at all (the IDNA codec refuses them): 400s, not 500s.
        "https://" + "a" * 64 + ".example/hooks",
        "https://a..example/hooks",
        "https://\udcff.example/hooks",
        "https://a\x00.example/hooks",
        "https://8.8.8.8/" + "x" * 2048,
    ],
)
def test_private_and_malformed_targets_are_refused_by_default(strict: Api, url: str):
    response = create(strict, {"url": url})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["errors"][0]["field"] == "url"
    assert strict.get("/admin/webhook-endpoints").json()["data"]["items"] == []


def test_the_opt_in_allows_http_to_private_addresses_only(hooks: Api, strict: Api):
    assert create(strict, {"url": "https://8.8.8.8/hooks"}).status_code == 201
    assert create(hooks, {"url": "http://127.0.0.1:8080/hooks"}).status_code == 201
    assert create(hooks, {"url": "http://localhost:8080/hooks"}).status_code == 201
    assert create(hooks, {"url": "https://10.0.0.1/hooks"}).status_code == 201
    assert create(hooks, {"url": "http://8.8.8.8/hooks"}).status_code == 400


def test_filters_must_name_existing_companies_and_partners(hooks: Api):
    url = "https://8.8.8.8/hooks"
    unknown = "00000000-0000-4000-8000-000000000000"
    assert create(hooks, {"url": url, "companyId": unknown}).status_code == 400
    assert create(hooks, {"url": url, "atsIntegrationId": unknown}).status_code == 400
    both = {"url": url, "companyId": hooks.company(), "atsIntegrationId": hooks.ats()}
    assert create(hooks, both).status_code == 400
    assert create(hooks, {"url": url, "extra": 1}).status_code == 400
    ats = endpoint(hooks, url, atsIntegrationId=hooks.ats("Lever"), description="partner")
    assert ats["description"] == "partner"


def test_endpoints_need_the_admin_scope_and_exist_to_be_removed(hooks: Api):
    reader = hooks.key("platform", scopes=["read:billing"])
    assert (
        hooks.post("/admin/webhook-endpoints", {"url": "https://8.8.8.8/"}, key=reader).status_code
        == 403
    )
    assert hooks.get("/admin/webhook-deliveries", key=reader).status_code == 403
    missing = hooks.client.delete(
        "/admin/webhook-endpoints/00000000-0000-4000-8000-000000000000",
        headers=hooks.auth(hooks.platform_key),
    )
    assert missing.status_code == 404
    unknown = hooks.get(
        "/admin/webhook-deliveries", endpointId="00000000-0000-4000-8000-000000000000"
    )
    assert unknown.status_code == 404
    assert hooks.get("/admin/webhook-deliveries", endpointId="nope").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://8.8.8.8/", "description": "a\x00b"},
        {"url": "https://8.8.8.8/", "description": "x" * 501},
        {"url": "https://8.8.8.8/", "description": 5},
        {"url": 5},
        {"url": "https://8.8.8.8/", "companyId": 5},
        {"url": "https://8.8.8.8/", "url ": "x"},
    ],
)
def test_malformed_bodies_are_400s_naming_the_field(hooks: Api, body: dict[str, Any]):
    response = create(hooks, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert hooks.get("/admin/webhook-endpoints").json()["data"]["items"] == []
