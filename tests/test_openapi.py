"""The OpenAPI document tells the truth (SPEC section 11), and /docs works offline.

The answers checked against the document are real ones, on both databases:
every success and error envelope the tests provoke must validate against the
schema the document gives for that operation and status.
"""

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.factories import Api, event

AUTHENTICATED_ERRORS = {"400", "401", "403", "429", "500", "503"}
PUBLIC = {"/healthz", "/readyz", "/metrics"}
BODIES = [
    ("post", "/admin/ats-integrations"),
    ("post", "/admin/companies"),
    ("patch", "/admin/companies/{company_id}"),
    ("post", "/admin/api-keys"),
    ("post", "/admin/pricing-rules"),
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
    for name in ("AtsIn", "CompanyIn", "CompanyPatch", "KeyIn", "RuleIn", "EventIn"):
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
