"""Administration of pricing rules (SPEC sections 3 "Credits pricing" and 4)."""

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from httpx2 import Response

from tally.core.instants import utcnow
from tests.factories import Api

PATH = "/admin/pricing-rules"


def _decimal_json(response: Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def _created(response: Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body = _decimal_json(response)
    assert body["success"] is True
    assert body["error"] is None
    assert body["timestamp"].endswith("Z")
    data: dict[str, Any] = body["data"]
    return data


def _invalid(response: Response, field: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert body["error"]["code"] == "VALIDATION_ERROR"
    fields = [error["field"] for error in body["error"]["details"]["errors"]]
    assert any(field in name for name in fields), fields


def _rules(api: Api) -> list[dict[str, Any]]:
    response = api.get(PATH, limit=100)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = _decimal_json(response)["data"]["items"]
    return items


def test_create_a_full_rule(api: Api) -> None:
    company = api.company("Globex", "credits")
    body = {
        "costKey": "interview_minutes",
        "agentFocus": "SCREENING",
        "companyId": company,
        "baseCost": Decimal("5"),
        "includedMinutes": Decimal("10"),
        "costPerMinute": Decimal("0.5"),
        "effectiveFrom": "2026-01-01T05:30:00+05:30",
    }
    rule = _created(api.post(PATH, body))
    uuid.UUID(rule["id"])
    assert rule["costKey"] == "interview_minutes"
    assert rule["agentFocus"] == "SCREENING"
    assert rule["companyId"] == company
    assert rule["baseCost"] == 5
    assert rule["includedMinutes"] == 10
    assert rule["costPerMinute"] == Decimal("0.5")
    assert rule["effectiveFrom"] == "2026-01-01T00:00:00Z"
    assert rule["createdAt"].endswith("Z")
    assert _rules(api) == [rule]


def test_platform_wide_rule_without_focus(api: Api) -> None:
    rule = _created(
        api.post(
            PATH,
            {"costKey": "sourcing_enrichment", "baseCost": 1, "effectiveFrom": "2020-01-01"},
        )
    )
    assert rule["agentFocus"] is None
    assert rule["companyId"] is None
    assert rule["baseCost"] == 1
    assert rule["effectiveFrom"] == "2020-01-01T00:00:00Z"


def test_amounts_are_exact_to_six_decimals(api: Api) -> None:
    rule = _created(
        api.post(
            PATH,
            {
                "costKey": "interview_minutes",
                "baseCost": Decimal("0.000001"),
                "includedMinutes": Decimal("12.50"),
                "costPerMinute": Decimal("123456.654321"),
            },
        )
    )
    assert rule["baseCost"] == Decimal("0.000001")
    assert rule["includedMinutes"] == Decimal("12.5")
    assert rule["costPerMinute"] == Decimal("123456.654321")
    assert '"costPerMinute":123456.654321' in api.get(PATH).text.replace(" ", "")


def test_effective_from_defaults_to_now(api: Api) -> None:
    before = utcnow() - timedelta(seconds=1)
    rule = _created(api.post(PATH, {"costKey": "interview_minutes", "baseCost": 1}))
    after = utcnow() + timedelta(seconds=1)
    assert rule["effectiveFrom"].endswith("Z")
    effective = datetime.fromisoformat(rule["effectiveFrom"])
    assert before <= effective <= after


def test_a_rule_effective_now_prices_events_from_now_on(api: Api) -> None:
    company = api.company("Globex", "credits")
    _created(api.post(PATH, {"costKey": "interview_minutes", "baseCost": 2}))
    recent = (utcnow() + timedelta(seconds=30)).isoformat()
    accepted = api.events(
        {
            "id": "ev-now",
            "companyId": company,
            "costKey": "interview_minutes",
            "occurredAt": recent,
        }
    )
    assert accepted.status_code == 200, accepted.text
    earlier = api.events(
        {
            "id": "ev-before",
            "companyId": company,
            "costKey": "interview_minutes",
            "occurredAt": "2026-01-01T00:00:00Z",
        }
    )
    assert earlier.status_code == 422, earlier.text
    assert earlier.json()["error"]["code"] == "NO_CREDIT_PRICING"


BAD_RULES: list[tuple[dict[str, Any], str]] = [
    ({"baseCost": -1}, "baseCost"),
    ({"baseCost": Decimal("-0.000001")}, "baseCost"),
    ({"includedMinutes": Decimal("-0.5")}, "includedMinutes"),
    ({"costPerMinute": -2}, "costPerMinute"),
    ({"baseCost": Decimal("0.0000001")}, "baseCost"),
    ({"includedMinutes": Decimal("1.1234567")}, "includedMinutes"),
    ({"costPerMinute": Decimal("0.5000001")}, "costPerMinute"),
    ({"baseCost": "5"}, "baseCost"),
    ({"baseCost": True}, "baseCost"),
    ({"baseCost": None}, "baseCost"),
    ({"costPerMinute": [1]}, "costPerMinute"),
    ({"agentFocus": "screening"}, "agentFocus"),
    ({"agentFocus": "INTERVIEW"}, "agentFocus"),
    ({"agentFocus": ""}, "agentFocus"),
    ({"costKey": "Interview_minutes"}, "costKey"),
    ({"costKey": "1minutes"}, "costKey"),
    ({"costKey": ""}, "costKey"),
    ({"costKey": "interview-minutes"}, "costKey"),
    ({"costKey": "a" * 65}, "costKey"),
    ({"costKey": None}, "costKey"),
    ({"companyId": "acme"}, "companyId"),
    ({"companyId": str(uuid.uuid4())}, "companyId"),
    ({"effectiveFrom": "soon"}, "effectiveFrom"),
    ({"priority": 1}, "priority"),
]


def test_invalid_rules_are_refused(api: Api, subtests: pytest.Subtests) -> None:
    for fields, field in BAD_RULES:
        with subtests.test(fields=fields):
            body = {
                "costKey": "interview_minutes",
                "baseCost": 1,
                "effectiveFrom": "2026-01-01",
            } | fields
            _invalid(api.post(PATH, body), field)
            assert _rules(api) == []


def test_missing_cost_key_is_refused(api: Api) -> None:
    _invalid(api.post(PATH, {"baseCost": 1}), "costKey")
    assert _rules(api) == []


def test_longest_cost_key_is_accepted(api: Api) -> None:
    key = "k" + "_" * 62 + "9"
    assert _created(api.post(PATH, {"costKey": key, "baseCost": 0}))["costKey"] == key


def test_rules_list_in_creation_order_and_paginates(api: Api) -> None:
    created = [
        _created(api.post(PATH, {"costKey": f"key_{index}", "baseCost": index}))["id"]
        for index in range(5)
    ]
    response = api.get(PATH, limit=2, page=2)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [rule["id"] for rule in data["items"]] == created[2:4]
    assert data["pagination"] == {
        "total": 5,
        "page": 2,
        "limit": 2,
        "totalPages": 3,
        "hasNextPage": True,
        "hasPreviousPage": True,
    }
    assert [rule["id"] for rule in _rules(api)] == created
