"""The OpenAPI document tells the truth (SPEC section 11), and /docs works offline.

The answers checked against the document are real ones, on both databases:
every success and error envelope the tests provoke must validate against the
schema the document gives for that operation and status.
"""

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tally.app import create_app
from tally.core.instants import format_instant, utcnow
from tally.db.engine import Database
from tests.factories import Api, event
from tests.plans.helpers import put_plan
from tests.webhooks.conftest import hook_settings

AUTHENTICATED_ERRORS = {"400", "401", "403", "429", "500", "503"}
PUBLIC = {"/healthz", "/readyz", "/metrics"}
BODIES = [
    ("post", "/admin/ats-integrations"),
    ("post", "/admin/companies"),
    ("patch", "/admin/companies/{company_id}"),
    ("post", "/admin/api-keys"),
    ("post", "/admin/pricing-rules"),
    ("put", "/admin/companies/{company_id}/plan"),
    ("post", "/admin/webhook-endpoints"),
    ("post", "/usage/events"),
]
METHODS = {"get", "post", "put", "patch", "delete"}
DECIMAL_STRING = "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$"  # pydantic's Decimal-as-string


def _document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _conforms(document: dict[str, Any], path: str, method: str, response: Response) -> None:
    """The answer validates against the document's schema for its status."""
    responses = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method.upper()} {path} answered undocumented {status}"
    schema = responses[status]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator(schema | {"components": document["components"]})
    errors = [str(error) for error in validator.iter_errors(response.json())]
    assert not errors, (method, path, status, errors[:3])


def test_every_operation_answers_in_the_envelope_and_documents_its_errors(
    client: TestClient,
) -> None:
    document = _document(client)
    operations = list(_operations(document))
    assert len(operations) >= 15
    for path, method, operation in operations:
        responses = operation["responses"]
        success = [status for status in responses if status.startswith("2")]
        assert len(success) == 1, (method, path)
        content = responses[success[0]]["content"]
        if "application/json" in content:  # (a CSV or metrics answer is not an envelope)
            ref = content["application/json"]["schema"]["$ref"]
            assert ref.startswith("#/components/schemas/Envelope_"), (method, path, ref)
        for status, answer in responses.items():
            if status.startswith(("4", "5")):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, status)
        assert "500" in responses
        assert "400" in responses, "every route refuses unknown query parameters"
        if path not in PUBLIC:
            assert set(responses) >= AUTHENTICATED_ERRORS, (method, path)
            assert operation["security"] == [{"bearerAuth": []}]
            assert "Retry-After" in responses["429"]["headers"]
            assert "Retry-After" in responses["503"]["headers"]
        else:
            assert "security" not in operation
    for method, path in BODIES:
        operation = document["paths"][path][method]
        body = operation["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"application/json"}
        assert {"413", "415"} <= set(operation["responses"])
    # FastAPI's own 422 is never sent; ingestion's 422 is tally's.
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "422" in document["paths"]["/usage/events"]["post"]["responses"]
    assert "422" not in document["paths"]["/admin/companies"]["get"]["responses"]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == scheme | {"type": "http", "scheme": "bearer"}


def test_the_envelope_schemas_are_exact(client: TestClient) -> None:
    document = _document(client)
    envelope = _schema(document, "Envelope_CompanyOut_")
    assert set(envelope["required"]) == {"success", "data", "error", "timestamp"}
    assert envelope["properties"]["success"]["const"] is True
    assert envelope["properties"]["error"]["type"] == "null"
    assert envelope["properties"]["data"] == {"$ref": "#/components/schemas/CompanyOut"}
    failed = _schema(document, "ErrorEnvelope")
    assert set(failed["required"]) == {"success", "data", "error", "timestamp"}
    assert failed["properties"]["success"]["const"] is False
    assert failed["properties"]["data"]["type"] == "null"
    page = _schema(document, "Page_CompanyOut_")
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/CompanyOut"}


def test_numbers_are_numbers_never_strings(client: TestClient) -> None:
    document = _document(client)
    for node in _walk(document):
        assert node.get("pattern") != DECIMAL_STRING, node
    rule_out = _schema(document, "RuleOut")["properties"]
    rule_in = _schema(document, "RuleIn")["properties"]
    for name in ("baseCost", "includedMinutes", "costPerMinute"):
        assert rule_out[name]["type"] == "number"
        assert rule_in[name]["type"] == "number"
        assert rule_in[name]["minimum"] == 0
    assert _schema(document, "EventIn")["properties"]["minutes"]["type"] == "number"
    allowance = _schema(document, "PlanIn")["properties"]["allowance"]
    assert allowance["type"] == "number"
    assert allowance["exclusiveMinimum"] == 0, "an allowance of 0 is refused"
    assert "minimum" not in allowance
    for name in ("allowance",):
        assert _schema(document, "PlanOut")["properties"][name]["type"] == "number"
    for name in ("allowance", "used", "remaining", "percentUsed", "projectedUsed"):
        assert _schema(document, "AllowanceOut")["properties"][name]["type"] == "number", name


def test_absent_unit_fields_are_optional_numbers_never_null(client: TestClient) -> None:
    document = _document(client)
    for name, fields in (
        ("UsageReport", ("totalMinutesUsed", "totalCreditsUsed")),
        ("CompanyUsage", ("totalMinutesUsed", "totalCreditsUsed")),
        ("CostKeyUsage", ("minutesUsed", "creditsUsed")),
    ):
        schema = _schema(document, name)
        for field in fields:
            assert schema["properties"][field]["type"] == "number", (name, field)
            assert field not in schema.get("required", []), (name, field)
        always = "events" if name == "CostKeyUsage" else "totalInterviews"
        assert always in schema["required"], name


def test_request_schemas_are_as_strict_as_the_server(client: TestClient) -> None:
    document = _document(client)
    names = ("AtsIn", "CompanyIn", "CompanyPatch", "KeyIn", "RuleIn", "EventIn", "PlanIn")
    for name in (*names, "EndpointIn"):
        assert _schema(document, name)["additionalProperties"] is False, name
    batch = _schema(document, "EventBatchIn")
    assert batch["properties"]["events"]["minItems"] == 1
    assert batch["properties"]["events"]["maxItems"] == 1000
    assert batch["required"] == ["events"]
    event_in = _schema(document, "EventIn")
    pattern = re.compile(event_in["properties"]["id"]["pattern"])
    assert pattern.fullmatch("ev-1.a:b_c")
    assert not pattern.fullmatch(".")
    assert not pattern.fullmatch("..")
    assert not pattern.fullmatch("x" * 129)
    assert set(event_in["required"]) == {"id", "companyId", "costKey", "occurredAt"}
    key_in = _schema(document, "KeyIn")["properties"]
    allowed = next(option for option in key_in["allowedIps"]["anyOf"] if "items" in option)
    assert allowed["minItems"] == 1
    patch = _schema(document, "CompanyPatch")["properties"]
    assert patch["name"]["type"] == "string", "null is refused, so not in the schema"
    void = document["paths"]["/usage/events/{event_id}/void"]["post"]["parameters"]
    assert re.compile(void[0]["schema"]["pattern"]).fullmatch("..") is None
    endpoint_in = _schema(document, "EndpointIn")
    assert endpoint_in["required"] == ["url"]
    assert endpoint_in["properties"]["url"]["maxLength"] == 2048
    for name in ("companyId", "atsIntegrationId"):
        formats = [option.get("format") for option in endpoint_in["properties"][name]["anyOf"]]
        assert "uuid" in formats, name
    plan_in = _schema(document, "PlanIn")
    assert plan_in["required"] == ["allowance", "period"]
    assert plan_in["properties"]["thresholds"]["maxItems"] == 20
    for path, name in (
        ("/billing/allowance", "companyId"),
        ("/admin/webhook-deliveries", "endpointId"),
    ):
        parameters = document["paths"][path]["get"]["parameters"]
        (parameter,) = [item for item in parameters if item["name"] == name]
        assert (parameter["schema"]["type"], parameter["schema"]["format"]) == ("string", "uuid")
        assert parameter["required"] is False


def test_real_answers_validate_against_the_document(api: Api) -> None:
    document = _document(api.client)
    ats = api.ats()
    minutes = api.company("Minutes Co", "minutes", ats=ats)
    credits = api.company("Credits Co", "credits")
    api.rule(costKey="interview_minutes", baseCost=5, effectiveFrom="2026-01-01T00:00:00Z")
    api.ingest(
        event(minutes, "ev-1", minutes=12.5, interviewId="iv-1"),
        event(credits, "ev-2", minutes=24.5, interviewId="iv-2"),
    )
    checks: list[tuple[str, str, Response]] = [
        ("/healthz", "get", api.client.get("/healthz")),
        ("/admin/companies", "get", api.get("/admin/companies")),
        ("/admin/ats-integrations", "get", api.get("/admin/ats-integrations")),
        ("/admin/api-keys", "get", api.get("/admin/api-keys")),
        ("/admin/pricing-rules", "get", api.get("/admin/pricing-rules")),
        ("/billing/usage", "get", api.get("/billing/usage", start="2026-01-01")),
        ("/billing/usage", "get", api.get("/billing/usage", start="x")),
        ("/billing/usage", "get", api.get("/billing/usage", key="sk_live_nope")),
        ("/admin/companies/{company_id}", "get", api.get(f"/admin/companies/{minutes}")),
        ("/admin/companies", "post", api.post("/admin/companies", {"name": "X"})),
        ("/usage/events", "post", api.events(event(minutes, "ev-3", minutes=-1))),
        ("/usage/events", "post", api.events(event(minutes, "ev-1", minutes=99))),
        ("/usage/events/{event_id}/void", "post", api.void("ev-1")),
        ("/usage/events/{event_id}/void", "post", api.void("ev-unknown")),
        (
            "/admin/api-keys",
            "post",
            api.post(
                "/admin/api-keys",
                {"name": "n", "kind": "company", "companyId": minutes, "scopes": ["read:billing"]},
            ),
        ),
    ]
    for path, method, response in checks:
        _conforms(document, path, method, response)
    statuses = {response.status_code for _, _, response in checks}
    assert {200, 201, 400, 401, 404, 409, 422} <= statuses


def test_both_units_of_a_report_validate(api: Api) -> None:
    document = _document(api.client)
    minutes = api.company("Minutes Co", "minutes")
    api.company("Credits Co", "credits")
    api.ingest(event(minutes, "ev-1", minutes=3))
    response = api.get("/billing/usage", start="2026-01-01")
    data = response.json()["data"]
    assert "totalMinutesUsed" in data
    assert "totalCreditsUsed" in data
    assert "creditsUsed" not in data["companies"][1]["breakdownByCostKey"][0]
    _conforms(document, "/billing/usage", "get", response)


def test_real_plan_and_allowance_answers_validate(api: Api) -> None:
    document = _document(api.client)
    company = api.company("Planned Co", "minutes")
    path = "/admin/companies/{company_id}/plan"
    checks: list[tuple[str, str, Response]] = [
        (path, "get", api.get(f"/admin/companies/{company}/plan")),  # 404: none yet
        (path, "put", put_plan(api, company, {"allowance": 0, "period": "month"})),
        (path, "put", put_plan(api, company, '{"allowance": 1, "allowance": 2}')),
        (path, "put", put_plan(api, "not-a-uuid", {"allowance": 1, "period": "month"})),
        (path, "put", put_plan(api, str(_unknown()), {"allowance": 1, "period": "month"})),
        (
            path,
            "put",
            put_plan(
                api,
                company,
                {"allowance": Decimal("0.000001"), "period": "year", "thresholds": [1, 50]},
            ),
        ),
        (path, "get", api.get(f"/admin/companies/{company}/plan")),
    ]
    # A tiny allowance far exceeded: percentUsed is 10**12 %, still a number.
    api.ingest(event(company, "ev-1", minutes=10_000, occurredAt=format_instant(utcnow())))
    checks += [
        ("/billing/allowance", "get", api.get("/billing/allowance")),
        ("/billing/allowance", "get", api.get("/billing/allowance", companyId=company)),
        ("/billing/allowance", "get", api.get("/billing/allowance", companyId="nope")),
        ("/billing/allowance", "get", api.get("/billing/allowance", key="sk_live_nope")),
        (path, "delete", _delete(api, f"/admin/companies/{company}/plan")),
        (path, "delete", _delete(api, f"/admin/companies/{company}/plan")),  # 404
    ]
    for path_, method, response in checks:
        _conforms(document, path_, method, response)
    statuses = [response.status_code for _, _, response in checks]
    assert statuses == [404, 400, 400, 400, 404, 200, 200, 200, 200, 400, 401, 200, 404]
    (entry,) = json.loads(checks[7][2].text, parse_float=Decimal)["data"]["companies"]
    assert entry["status"] == "exceeded"
    assert entry["percentUsed"] == 10**12
    assert entry["remaining"] == Decimal("-9999.999999")


def _unknown() -> str:
    return "9f0c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13"


def _delete(api: Api, path: str) -> Response:
    return api.client.delete(path, headers=api.auth(api.platform_key))


@pytest.fixture
def hooks(db: Database) -> Iterator[Api]:
    """Private targets allowed, no delivery worker: deliveries stay pending."""
    app = create_app(hook_settings(db), database=db)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api.bootstrap(client, db)


@pytest.fixture
def strict(db: Database) -> Iterator[Api]:
    """The default target policy (no private targets), no delivery worker."""
    app = create_app(hook_settings(db, webhook_allow_private=False), database=db)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api.bootstrap(client, db)


def test_real_webhook_answers_validate(strict: Api, hooks: Api) -> None:
    document = _document(hooks.client)
    endpoints = "/admin/webhook-endpoints"
    refused = strict.post(endpoints, {"url": "https://127.0.0.1/hooks"})
    assert refused.json()["error"]["details"]["errors"][0]["field"] == "url"
    company = hooks.company("Hooked Co", "minutes")
    assert put_plan(hooks, company, {"allowance": 10, "period": "month"}).status_code == 200
    created = hooks.post(endpoints, {"url": "https://8.8.8.8/hooks", "companyId": company})
    hooks.ingest(event(company, "ev-1", minutes=10, occurredAt=format_instant(utcnow())))
    listed = hooks.get("/admin/webhook-deliveries")
    delivery = listed.json()["data"]["items"][0]["id"]
    endpoint_id = created.json()["data"]["id"]
    deliveries = "/admin/webhook-deliveries"
    retry = "/admin/webhook-deliveries/{delivery_id}/retry"
    checks: list[tuple[str, str, Response]] = [
        (endpoints, "post", refused),
        (endpoints, "post", hooks.post(endpoints, {"url": "https://8.8.8.8/", "extra": 1})),
        (endpoints, "post", hooks.post(endpoints, {"url": "https://8.8.8.8/", "companyId": "x"})),
        (endpoints, "post", created),
        (endpoints, "get", hooks.get(endpoints)),
        (deliveries, "get", listed),
        (deliveries, "get", hooks.get(deliveries, endpointId=endpoint_id)),
        (deliveries, "get", hooks.get(deliveries, endpointId=_unknown())),
        (deliveries, "get", hooks.get(deliveries, endpointId="nope")),
        (retry, "post", hooks.post(f"{deliveries}/{delivery}/retry", {})),
        (retry, "post", hooks.post(f"{deliveries}/{_unknown()}/retry", {})),
        (endpoints + "/{endpoint_id}", "delete", _delete(hooks, f"{endpoints}/{endpoint_id}")),
        (endpoints + "/{endpoint_id}", "delete", _delete(hooks, f"{endpoints}/{endpoint_id}")),
    ]
    for path, method, response in checks:
        _conforms(document, path, method, response)
    statuses = [response.status_code for _, _, response in checks]
    assert statuses == [400, 400, 400, 201, 200, 200, 200, 404, 400, 200, 404, 200, 404]
    assert created.headers["cache-control"] == "no-store"
    assert listed.json()["data"]["items"][0]["status"] == "pending"


def test_docs_are_served_offline(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert re.search(r"https?://", html) is None, "no CDN or other external URL"
    assets = re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", html)
    assert len(assets) >= 3, assets
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert any(asset.endswith("swagger-ui.css") for asset in assets)
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 500, asset
    assert "'/openapi.json'" in html or '"/openapi.json"' in html
    assert client.get("/redoc").status_code == 404


def test_unknown_method_names_every_method_of_the_path(client: TestClient) -> None:
    response = client.request("OPTIONS", "/admin/companies")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("path", ["/admin/companies", "/usage/events"])
def test_documented_bodies_name_their_model(client: TestClient, path: str) -> None:
    operation = _document(client)["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    expected = {"/admin/companies": "CompanyIn", "/usage/events": "EventBatchIn"}[path]
    assert schema == {"$ref": f"#/components/schemas/{expected}"}
