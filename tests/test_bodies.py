"""Authentication before the body (issue 10 item 3): a request without a valid key
is refused before a byte of its body is read, let alone parsed."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally.app import create_app
from tally.db.engine import Database
from tally.settings import Settings
from tests.factories import Api, make_key

MIB = 1024 * 1024
BODY_ROUTES = [
    ("POST", "/admin/ats-integrations"),
    ("POST", "/admin/companies"),
    ("PATCH", "/admin/companies/9f0c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13"),
    ("POST", "/admin/api-keys"),
    ("POST", "/admin/pricing-rules"),
    ("PUT", "/admin/companies/9f0c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13/plan"),
    ("POST", "/admin/webhook-endpoints"),
    ("POST", "/usage/events"),
]
# Not JSON at all: parsing it would be a 400, so a 401 proves it was not parsed.
GARBAGE = b"{" + b"x" * (MIB - 2) + b"\xff"


class ReadSpy:
    """Counts the body bytes the application asks the server for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bytes_read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def spying() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.bytes_read += len(message.get("body", b""))
            return message

        await self.app(scope, spying, send)


@pytest.fixture
def spied(db: Database) -> Iterator[tuple[TestClient, ReadSpy]]:
    spy = ReadSpy(create_app(Settings(database_url=db.url), database=db))
    with TestClient(spy, raise_server_exceptions=False) as client:
        yield client, spy


def _code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk_live_" + "A" * 43},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["no-key", "unknown-key", "other-scheme"],
)
def test_unauthenticated_bodies_are_never_read(
    spied: tuple[TestClient, ReadSpy], method: str, path: str, headers: dict[str, str]
) -> None:
    client, spy = spied
    for content_type in ("application/json", "text/plain"):
        response = client.request(
            method, path, content=GARBAGE, headers=headers | {"Content-Type": content_type}
        )
        assert response.status_code == 401, response.text
        assert _code(response) == "INVALID_API_KEY"
    assert spy.bytes_read == 0


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_a_key_without_the_scope_is_refused_before_the_body(
    spied: tuple[TestClient, ReadSpy], db: Database, method: str, path: str
) -> None:
    client, spy = spied
    reader = make_key(db, kind="platform", scopes=["read:billing"])
    response = client.request(
        method,
        path,
        content=GARBAGE,
        headers={"Authorization": f"Bearer {reader}", "Content-Type": "application/json"},
    )
    assert response.status_code == 403, response.text
    assert _code(response) == "INSUFFICIENT_SCOPE"
    assert spy.bytes_read == 0


def test_an_authenticated_body_is_read_and_parsed(
    spied: tuple[TestClient, ReadSpy], db: Database
) -> None:
    client, spy = spied
    api = Api.bootstrap(client, db)
    response = client.post(
        "/admin/ats-integrations",
        content=GARBAGE,
        headers=api.auth(api.platform_key) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert _code(response) == "VALIDATION_ERROR"
    assert spy.bytes_read == len(GARBAGE)


def test_an_authenticated_body_over_the_limit_is_413(
    spied: tuple[TestClient, ReadSpy], db: Database
) -> None:
    client, _ = spied
    api = Api.bootstrap(client, db)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(17):
            yield b" " * (64 * 1024)

    response = client.post(
        "/admin/ats-integrations",
        content=chunks(),
        headers=api.auth(api.platform_key) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert _code(response) == "PAYLOAD_TOO_LARGE"


def test_a_declared_body_parameter_over_the_limit_is_413_too(db: Database) -> None:
    """Routes that declare a body the FastAPI way still get 413 in the envelope."""
    app = create_app(Settings(database_url=db.url, max_body_bytes=1000), database=db)

    @app.post("/echo")
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    def chunks() -> Iterator[bytes]:
        yield b'{"a": "'
        yield b"x" * 2000
        yield b'"}'

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/echo", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == {
        "code": "PAYLOAD_TOO_LARGE",
        "message": "request body over 1000 bytes",
        "details": {"limitBytes": 1000},
    }
