"""Request ids, one log line per request, and one-line 500s, over the real app (both DBs)."""

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tally.db.engine import Database
from tally.observability.requestlog import JsonFormatter
from tests.factories import Api, event

SECRET_PARAMETER = "SECRET-PARAM-7f3a9c"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="tally")
    return caplog


def _lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


def _all_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = JsonFormatter()
    return caplog.text + "\n".join(formatter.format(r) for r in caplog.records)


def test_a_given_request_id_is_echoed_and_logged(api: Api, logs: pytest.LogCaptureFixture) -> None:
    logs.clear()
    response = api.client.get(
        "/admin/companies", headers=api.auth(api.platform_key) | {"X-Request-ID": "trace-42"}
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "trace-42"
    [line] = _lines(logs, "tally.request")
    assert line["requestId"] == "trace-42"
    assert line["method"] == "GET"
    assert line["route"] == "/admin/companies"
    assert line["status"] == 200
    assert line["durationMs"] >= 0
    assert line["keyPrefix"] == api.platform_key[:16]
    assert line["client"] == "testclient"
    assert api.platform_key not in _all_text(logs)


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/billing/usage", {}, 401),
        ("GET", "/no/such/path", {}, 404),
        ("GET", "/billing/usage?start=garbage", {"Authorization": "Bearer sk_live_x"}, 401),
        ("POST", "/usage/events", {"Content-Length": str(2 * 1024 * 1024)}, 413),
    ],
)
def test_errors_carry_a_generated_request_id(
    client: TestClient, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    body = b"x" * (2 * 1024 * 1024) if method == "POST" else None
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code == status
    assert len(response.headers["X-Request-ID"]) == 32
    assert response.json()["success"] is False


def test_a_malformed_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces" + "x" * 200})
    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 32


def test_the_log_line_names_the_route_template_never_the_path_or_query(
    api: Api, logs: pytest.LogCaptureFixture
) -> None:
    company = api.company()
    api.ingest(event(company, "ev-secretish-id"))
    logs.clear()
    assert api.void("ev-secretish-id").status_code == 200
    response = api.client.get(
        "/billing/usage?start=2026-01-01&token=hunter2", headers=api.auth(api.platform_key)
    )
    assert response.status_code in (200, 400)
    routes = [line["route"] for line in _lines(logs, "tally.request")]
    assert routes == ["/usage/events/{event_id}/void", "/billing/usage"]
    text_logged = _all_text(logs)
    assert "ev-secretish-id" not in text_logged
    assert "hunter2" not in text_logged


def _failing_repository(session: Session, offset: int, limit: int) -> Any:
    session.execute(
        text("SELECT * FROM no_such_table WHERE name = :secret"), {"secret": SECRET_PARAMETER}
    )
    raise AssertionError("unreachable")


def test_a_500_logs_one_line_with_the_request_id_and_no_parameters(
    api: Api, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tally.companies.repository.page_companies", _failing_repository)
    logs.clear()
    response = api.client.get(
        "/admin/companies", headers=api.auth(api.platform_key) | {"X-Request-ID": "boom-1"}
    )
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "boom-1"
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert SECRET_PARAMETER not in response.text
    errors = [r for r in logs.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    [line] = _lines(logs, "tally.error")
    assert line["requestId"] == "boom-1"
    assert line["error"] in ("OperationalError", "ProgrammingError")
    assert line["where"].endswith(".py:" + line["where"].rsplit(":", 1)[1])
    assert line["route"] == "/admin/companies"
    assert all(record.exc_info is None for record in logs.records)
    logged = _all_text(logs)
    assert SECRET_PARAMETER not in logged
    assert "no_such_table" not in logged
    assert "Traceback" not in logged
    [request_line] = _lines(logs, "tally.request")
    assert request_line["status"] == 500


def test_the_database_error_itself_hides_its_parameters(
    api: Api, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def failing(session: Session, offset: int, limit: int) -> Any:
        try:
            return _failing_repository(session, offset, limit)
        except Exception as exc:
            seen.append(str(exc))
            raise

    monkeypatch.setattr("tally.companies.repository.page_companies", failing)
    assert api.get("/admin/companies").status_code == 500
    assert db.engine.hide_parameters
    assert db.loop_engine.hide_parameters
    assert seen
    assert SECRET_PARAMETER not in seen[0]
    assert "hidden due to hide_parameters=True" in seen[0]
