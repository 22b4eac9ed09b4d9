"""The worked examples of shared/conformance/usage-cases.json, through the HTTP API."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tally.core.quantities import from_scaled
from tally.db.engine import Database
from tally.usage.models import UsageEvent
from tests.factories import Api

SHARED_CASES = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "usage-cases.json"
# A copy travels with the tests; when the shared contract sits beside the
# checkout, it is the one read (and the copy must not have drifted from it).
VENDORED_CASES = Path(__file__).parent / "data" / "usage-cases.json"
CASES_PATH = SHARED_CASES if SHARED_CASES.exists() else VENDORED_CASES
EVENT_FIELDS = (
    "id",
    "companyId",
    "costKey",
    "occurredAt",
    "minutes",
    "interviewId",
    "isTest",
    "agentFocus",
)


def _load() -> dict[str, Any]:
    return json.loads(CASES_PATH.read_text(), parse_float=Decimal)


CASES = _load()


def _setup(api: Api) -> dict[str, str]:
    """Create the fixture's world; returns the key of each named caller."""
    ats_ids: dict[str, str] = {}
    keys: dict[str, str] = {"platform": api.platform_key}
    for company in CASES["companies"]:
        label = company["atsIntegration"]
        if label is not None and label not in ats_ids:
            ats_ids[label] = api.ats(label)
        api.company(
            company["name"],
            company["billingSystem"],
            ats_ids.get(label) if label else None,
            company["id"],
        )
        keys[f"company:{company['name']}"] = api.key("company", company["id"])
    for label, ats_id in ats_ids.items():
        keys[f"ats:{label}"] = api.key("ats", ats_id)
    for rule in CASES["pricingRules"]:
        api.rule(**{k: v for k, v in rule.items() if v is not None})
    events = [{k: e[k] for k in EVENT_FIELDS if e.get(k) is not None} for e in CASES["events"]]
    assert api.ingest(*events) == {"accepted": len(events), "duplicates": 0}
    for item in CASES["events"]:
        if item["voided"]:
            assert api.void(item["id"]).status_code == 200
    return keys


@pytest.fixture
def world(api: Api) -> dict[str, str]:
    return _setup(api)


def test_every_case_returns_exactly_its_expected_data(api: Api, world: dict[str, str]) -> None:
    for case in CASES["cases"]:
        response = api.usage(world[case["key"]], **case["query"])
        assert response.status_code == 200, response.text
        body = json.loads(response.text, parse_float=Decimal)
        assert body["data"] == case["expectedData"], case["why"]


def test_every_event_is_priced_as_expected(api: Api, world: dict[str, str], db: Database) -> None:
    with db.transaction(write=False) as session:
        stored = {row.id: row for row in session.scalars(select(UsageEvent))}
    for item in CASES["events"]:
        assert from_scaled(stored[item["id"]].credits) == item["expectedCredits"], item["id"]


def test_the_vendored_copy_matches_the_contract() -> None:
    if not SHARED_CASES.exists():
        pytest.skip("shared/conformance is not beside this checkout")
    assert json.loads(VENDORED_CASES.read_text()) == json.loads(SHARED_CASES.read_text())


def test_numbers_render_without_float_noise(api: Api, world: dict[str, str]) -> None:
    response = api.usage(world["ats:ats-1"], start="2026-01-01", end="2026-04-01")
    assert '"totalCreditsUsed":29.975' in response.text
    assert '"totalMinutesUsed":54.25' in response.text
