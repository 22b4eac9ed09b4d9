"""Plain factory functions and a thin API helper for tests."""

import uuid
from typing import Any

import simplejson
from fastapi.testclient import TestClient
from httpx2 import Response

from tally.auth import admin as keys_admin
from tally.auth.schemas import KeyIn
from tally.core.instants import utcnow
from tally.db.engine import Database


def make_key(database: Database, **fields: Any) -> str:
    """Create a key straight through the service (bootstrap, odd cases)."""
    body = KeyIn.model_validate({"name": "test"} | fields)
    with database.transaction(write=True) as session:
        _, raw = keys_admin.create_key(session, body, utcnow())
    return raw


class Api:
    """The HTTP API as a platform operator with every scope sees it."""

    def __init__(self, client: TestClient, platform_key: str) -> None:
        self.client = client
        self.platform_key = platform_key

    @classmethod
    def bootstrap(cls, client: TestClient, database: Database) -> "Api":
        key = make_key(database, kind="platform", scopes=["admin", "write:usage", "read:billing"])
        return cls(client, key)

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: Any, key: str | None = None) -> Response:
        # simplejson writes Decimal as the exact number it is, as a client would.
        content = simplejson.dumps(body, use_decimal=True)
        headers = self.auth(key or self.platform_key) | {"Content-Type": "application/json"}
        return self.client.post(path, content=content, headers=headers)

    def get(self, path: str, key: str | None = None, **params: Any) -> Response:
        return self.client.get(path, params=params, headers=self.auth(key or self.platform_key))

    def created(self, path: str, body: Any) -> dict[str, Any]:
        response = self.post(path, body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def ats(self, name: str = "Greenhouse") -> str:
        return str(self.created("/admin/ats-integrations", {"name": name})["id"])

    def company(
        self,
        name: str = "Acme Corp",
        billing: str = "minutes",
        ats: str | None = None,
        company_id: str | None = None,
    ) -> str:
        body: dict[str, Any] = {"name": name, "billingSystem": billing, "atsIntegrationId": ats}
        if company_id is not None:
            body["id"] = company_id
        return str(self.created("/admin/companies", body)["id"])

    def key(
        self, kind: str, owner: str | None = None, scopes: list[str] | None = None, **extra: Any
    ) -> str:
        body: dict[str, Any] = {
            "name": f"{kind} key",
            "kind": kind,
            "scopes": scopes or ["read:billing"],
        } | extra
        if kind == "company":
            body["companyId"] = owner
        elif kind == "ats":
            body["atsIntegrationId"] = owner
        return str(self.created("/admin/api-keys", body)["key"])

    def rule(self, **fields: Any) -> dict[str, Any]:
        body = {"baseCost": 0, "includedMinutes": 0, "costPerMinute": 0} | fields
        return self.created("/admin/pricing-rules", body)

    def events(self, *events: dict[str, Any]) -> Response:
        return self.post("/usage/events", {"events": list(events)})

    def ingest(self, *events: dict[str, Any]) -> dict[str, Any]:
        response = self.events(*events)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def void(self, event_id: str) -> Response:
        return self.client.post(
            f"/usage/events/{event_id}/void", headers=self.auth(self.platform_key)
        )

    def usage(self, key: str | None = None, **params: Any) -> Response:
        return self.get("/billing/usage", key=key, **params)


def event(company_id: str, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id or f"ev-{uuid.uuid4().hex}",
        "companyId": company_id,
        "costKey": "interview_minutes",
        "occurredAt": "2026-02-10T10:00:00Z",
        "minutes": 10,
    } | fields
