"""Shared steps of the webhook tests."""

from decimal import Decimal
from typing import Any

from standardwebhooks import Webhook

from tally.core.instants import format_instant, utcnow
from tests.factories import Api, event
from tests.plans.helpers import plan
from tests.webhooks.receiver import Received


def now_event(company: str, minutes: Any, **fields: Any) -> dict[str, Any]:
    return event(
        company, occurredAt=format_instant(utcnow()), minutes=Decimal(str(minutes)), **fields
    )


def endpoint(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/admin/webhook-endpoints", {"url": url} | fields)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def planned_company(api: Api, name: str = "Globex", **plan_fields: Any) -> str:
    company = api.company(
        name, plan_fields.pop("billing", "minutes"), ats=plan_fields.pop("ats", None)
    )
    plan(api, company, **({"allowance": 100, "thresholds": [50, 80, 100]} | plan_fields))
    return company


def deliveries(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/admin/webhook-deliveries", limit=100, **params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]["items"]
    return items


def verified(received: Received, secret: str) -> dict[str, Any]:
    """The body, after the standardwebhooks library checked its signature."""
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


def thresholds_sent(received: list[Received]) -> list[int]:
    return sorted(item.json["data"]["threshold"] for item in received)
