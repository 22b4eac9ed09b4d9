"""PUT/GET/DELETE /admin/companies/{id}/plan and GET /billing/allowance over HTTP."""

import uuid
from decimal import Decimal

import pytest

from tests.factories import Api, event
from tests.plans.helpers import plan, put_plan


def test_a_plan_gets_its_defaults(api: Api):
    company = api.company("Globex", "credits")
    data = plan(api, company, allowance=Decimal("5000.5"))
    assert data["companyId"] == company
    assert data["unit"] == "credits"
    assert data["allowance"] == 5000.5
    assert (data["period"], data["anchorDay"], data["timeZone"]) == ("month", 1, "UTC")
    assert data["thresholds"] == [80, 100]
    assert 1 <= data["anchorMonth"] <= 12
    assert api.get(f"/admin/companies/{company}/plan").json()["data"] == data


def test_thresholds_are_deduplicated_and_sorted_and_the_plan_replaced(api: Api):
    company = api.company()
    plan(api, company, allowance=10)
    data = plan(
        api,
        company,
        allowance=Decimal("0.000001"),
        period="year",
        anchorDay=28,
        anchorMonth=2,
        timeZone="America/St_Johns",
        thresholds=[100, 50, 1000, 50, 1],
    )
    assert data["thresholds"] == [1, 50, 100, 1000]
    assert (data["period"], data["anchorDay"], data["anchorMonth"]) == ("year", 28, 2)
    assert data["allowance"] == 0.000001
    assert data["timeZone"] == "America/St_Johns"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"allowance": 0, "period": "month"}, "allowance"),
        ({"allowance": -5, "period": "month"}, "allowance"),
        ('{"allowance": 1.0000001, "period": "month"}', "allowance"),
        ('{"allowance": 1e999999, "period": "month"}', "allowance"),
        ('{"allowance": 1e-999999999, "period": "month"}', "allowance"),
        ({"allowance": "100", "period": "month"}, "allowance"),
        ({"allowance": True, "period": "month"}, "allowance"),
        ({"period": "month"}, "allowance"),
        ({"allowance": 1, "period": "week"}, "period"),
        ({"allowance": 1, "period": "month", "anchorDay": 29}, "anchorDay"),
        ({"allowance": 1, "period": "month", "anchorDay": 0}, "anchorDay"),
        ('{"allowance": 1, "period": "month", "anchorDay": 1.5}', "anchorDay"),
        ({"allowance": 1, "period": "year", "anchorMonth": 13}, "anchorMonth"),
        ({"allowance": 1, "period": "month", "timeZone": "Mars/Olympus_Mons"}, "timeZone"),
        ({"allowance": 1, "period": "month", "timeZone": "../../etc/passwd"}, "timeZone"),
        ({"allowance": 1, "period": "month", "timeZone": ""}, "timeZone"),
        ({"allowance": 1, "period": "month", "thresholds": []}, "thresholds"),
        ({"allowance": 1, "period": "month", "thresholds": [0]}, "thresholds.0"),
        ({"allowance": 1, "period": "month", "thresholds": [80, 1001]}, "thresholds.1"),
        ({"allowance": 1, "period": "month", "thresholds": ["80"]}, "thresholds.0"),
        ({"allowance": 1, "period": "month", "thresholds": [True]}, "thresholds.0"),
        ({"allowance": 1, "period": "month", "extra": 1}, "extra"),
    ],
)
def test_bad_plans_are_refused_naming_the_field(api: Api, body, field):
    company = api.company()
    response = put_plan(api, company, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [item["field"] for item in error["details"]["errors"]]
    assert api.get(f"/admin/companies/{company}/plan").status_code == 404


def test_an_unknown_zone_is_named_in_the_message(api: Api):
    response = put_plan(
        api, api.company(), {"allowance": 1, "period": "month", "timeZone": "Mars/Base"}
    )
    assert "Mars/Base" in response.json()["error"]["details"]["errors"][0]["message"]


def test_not_json_and_not_an_object_are_refused(api: Api):
    company = api.company()
    for body in ("{", "[1]", "null"):
        response = put_plan(api, company, body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_missing_plans_and_companies(api: Api):
    company = api.company()
    assert api.get(f"/admin/companies/{company}/plan").status_code == 404
    unknown = str(uuid.uuid4())
    assert put_plan(api, unknown, {"allowance": 1, "period": "month"}).status_code == 404
    assert (
        api.client.delete(
            f"/admin/companies/{company}/plan", headers=api.auth(api.platform_key)
        ).status_code
        == 404
    )
    plan(api, company)
    deleted = api.client.delete(
        f"/admin/companies/{company}/plan", headers=api.auth(api.platform_key)
    )
    assert deleted.status_code == 200
    assert deleted.json()["data"]["companyId"] == company
    assert api.get(f"/admin/companies/{company}/plan").status_code == 404


def test_plans_need_the_admin_scope(api: Api):
    company = api.company()
    key = api.key("company", company)
    response = put_plan(api, company, {"allowance": 1, "period": "month"}, key=key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    assert api.get(f"/admin/companies/{company}/plan").status_code == 404


def allowance(api: Api, key: str | None = None, **params):
    response = api.get("/billing/allowance", key=key, **params)
    assert response.status_code == 200, response.text
    return response.json()["data"]["companies"]


def test_allowance_counts_the_current_period_like_the_usage_report(api: Api):
    acme = api.company("Acme", "minutes")
    plan(api, acme, allowance=50)
    entry = allowance(api)[0]
    start = entry["periodStart"]
    api.ingest(
        event(acme, occurredAt=start, minutes=Decimal("30.25")),
        event(acme, occurredAt=start, minutes=Decimal("10"), isTest=True),
        event(acme, occurredAt="2001-01-01T00:00:00Z", minutes=1000),
    )
    voided = event(acme, occurredAt=start, minutes=5)
    api.ingest(voided)
    assert api.void(voided["id"]).status_code == 200
    entry = allowance(api)[0]
    usage = api.usage(start=start, end=entry["periodEnd"]).json()["data"]
    assert entry["used"] == usage["companies"][0]["totalMinutesUsed"] == 30.25
    assert entry["remaining"] == 19.75
    assert entry["percentUsed"] == 60.5
    assert entry["crossedThresholds"] == []
    assert entry["status"] == "ok"
    assert entry["unit"] == entry["billingSystem"] == "minutes"
    assert entry["projectedUsed"] >= 30.25


def test_exceeded_with_every_threshold_crossed(api: Api):
    globex = api.company("Globex", "credits")
    api.rule(costKey="interview_minutes", baseCost=Decimal("2.5"), effectiveFrom="2000-01-01")
    plan(api, globex, allowance=4, thresholds=[50, 80, 100, 150])
    start = allowance(api)[0]["periodStart"]
    api.ingest(event(globex, occurredAt=start), event(globex, occurredAt=start))
    entry = allowance(api)[0]
    assert (entry["used"], entry["remaining"], entry["percentUsed"]) == (5, -1, 125)
    assert entry["crossedThresholds"] == [50, 80, 100]
    assert entry["status"] == "exceeded"


def test_allowance_follows_tenancy(api: Api):
    ats = api.ats()
    managed = api.company("Managed", ats=ats)
    other = api.company("Other")
    planless = api.company("Planless", ats=ats)
    for company in (managed, other):
        plan(api, company)
    everyone = [entry["companyName"] for entry in allowance(api)]
    assert everyone == ["Managed", "Other"]
    ats_key = api.key("ats", ats)
    assert [e["companyId"] for e in allowance(api, ats_key)] == [managed]
    assert allowance(api, ats_key, companyId=planless) == []
    refused = api.get("/billing/allowance", key=ats_key, companyId=other)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "COMPANY_NOT_ACCESSIBLE"
    company_key = api.key("company", other)
    assert [e["companyId"] for e in allowance(api, company_key, companyId=managed)] == [other]
    assert api.get("/billing/allowance", companyId="nope").status_code == 400
    writer = api.key("platform", scopes=["write:usage"])
    assert api.get("/billing/allowance", key=writer).status_code == 403
