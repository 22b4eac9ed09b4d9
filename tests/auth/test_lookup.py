"""Keys are found by their whole digest (issue 10 item 8); shown keys are not cached."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, update
from typer.testing import CliRunner

from tally.auth import keys
from tally.auth.models import ApiKey
from tally.cli import app as cli_app
from tally.db.engine import Database
from tests.factories import Api

CREATE_PLATFORM_KEY = ("keys", "create", "--kind", "platform", "--scope", "read:billing")


@contextmanager
def _statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the app sends meanwhile (any pool), with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        seen.append((statement, parameters))

    engines: list[Engine] = [db.engine, db.loop_engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def _same_lookup_id_other_secret(key: str) -> str:
    """A well-formed key sharing `key`'s lookup id (prefix) but not its secret."""
    last = "A" if key[-1] != "A" else "B"
    return key[:-1] + last


def test_unknown_and_known_lookup_id_keys_take_the_same_path(api: Api, db: Database) -> None:
    known = api.key("platform", scopes=["read:billing"])
    near = _same_lookup_id_other_secret(known)
    assert keys.lookup_id(near) == keys.lookup_id(known)
    unknown = keys.generate_key()
    paths = []
    for key in (near, unknown, near, unknown):
        with _statements(db) as seen:
            response = api.usage(key)
        assert response.status_code == 401, response.text
        lookups = [(sql, params) for sql, params in seen if "api_keys" in sql]
        assert len(lookups) == 1, lookups
        # The one lookup is by the digest of the whole key presented.
        assert hashlib.sha256(key.encode()).hexdigest() in str(lookups[0][1])
        assert keys.lookup_id(key) not in str(lookups[0][1])
        paths.append([sql for sql, _ in seen])
    assert all(path == paths[0] for path in paths), paths
    lookup = next(sql for sql in paths[0] if "api_keys" in sql)
    assert "key_hash" in lookup.split("WHERE", 1)[1]
    assert "lookup_id" not in lookup.split("WHERE", 1)[1]


def test_keys_sharing_a_lookup_id_each_authenticate_as_themselves(api: Api, db: Database) -> None:
    first = api.key("platform", scopes=["read:billing"], name="first")
    second = api.key("platform", scopes=["admin"], name="second")
    with db.transaction(write=True) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.lookup_id == keys.lookup_id(second))
            .values(lookup_id=keys.lookup_id(first))
        )
    assert api.usage(first).status_code == 200
    assert api.usage(second).status_code == 403
    assert api.get("/admin/api-keys", key=second).status_code == 200
    assert api.get("/admin/api-keys", key=first).status_code == 403


def test_the_answer_that_shows_a_key_is_never_stored_by_a_cache(api: Api) -> None:
    body = {"name": "k", "kind": "platform", "scopes": ["read:billing"]}
    created = api.post("/admin/api-keys", body)
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    assert "key" in created.json()["data"]


def test_the_cli_sets_both_limits(api: Api, db: Database) -> None:
    result = CliRunner().invoke(
        cli_app,
        [
            *CREATE_PLATFORM_KEY,
            "--rate-limit-minute",
            "2",
            "--rate-limit-hour",
            "9",
            "--database-url",
            db.url,
        ],
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert keys.is_well_formed(key)
    listed = api.get("/admin/api-keys", limit=100).json()["data"]["items"]
    mine = [item for item in listed if item["prefix"] == keys.lookup_id(key)]
    assert [(item["rateLimitPerMinute"], item["rateLimitPerHour"]) for item in mine] == [(2, 9)]
    answers = [api.usage(key) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit-Hour"] == "9"


def test_the_cli_refuses_a_limit_below_one(api: Api, db: Database) -> None:
    for flag in ("--rate-limit-minute", "--rate-limit-hour"):
        result = CliRunner().invoke(
            cli_app,
            [*CREATE_PLATFORM_KEY, flag, "0", "--database-url", db.url],
        )
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
    assert len(api.get("/admin/api-keys").json()["data"]["items"]) == 1
