"""Rate limits (SPEC 10): per key, per failing address, and shared through Redis."""

import asyncio
import logging
import socket
import time
import uuid
from typing import Any

import pytest
from httpx2 import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select

from tally.auth import keys
from tally.auth.ratelimit import RateLimiter, key_limits
from tally.auth.repository import KeyRecord
from tally.db.engine import Database
from tally.settings import Settings
from tally.usage.models import UsageEvent
from tests.auth.conftest import Clients
from tests.factories import Api, event, make_key

MINUTE = ("X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute", "X-RateLimit-Reset-Minute")
HOUR = ("X-RateLimit-Limit-Hour", "X-RateLimit-Remaining-Hour", "X-RateLimit-Reset-Hour")


def _limits(response: Response) -> dict[str, int]:
    """The rate-limit headers of an answer, as numbers."""
    return {name: int(response.headers[name]) for name in MINUTE + HOUR if name in response.headers}


def _no_limit_headers(response: Response) -> None:
    named = [name for name in response.headers if name.lower().startswith("x-ratelimit")]
    assert named == [], named


def _refused(response: Response, longest: int) -> int:
    """Assert a 429 RATE_LIMITED in the envelope; its Retry-After, in 1..longest."""
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert body["error"]["code"] == "RATE_LIMITED"
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= longest
    return retry


def _company_key(api: Api, **limits: Any) -> str:
    return api.key("company", api.company(), **limits)


# --- the defaults and a key's own limits ----------------------------------------------------


def test_company_keys_default_to_60_a_minute_and_2000_an_hour(api: Api) -> None:
    key = _company_key(api)
    started = time.time()
    for n in range(1, 61):
        response = api.usage(key)
        assert response.status_code == 200, response.text
        headers = _limits(response)
        assert headers["X-RateLimit-Limit-Minute"] == 60
        assert headers["X-RateLimit-Remaining-Minute"] == 60 - n
        assert headers["X-RateLimit-Limit-Hour"] == 2000
        assert headers["X-RateLimit-Remaining-Hour"] == 2000 - n
        # The window frees up one period after the first request of it.
        assert started + 60 <= headers["X-RateLimit-Reset-Minute"] <= time.time() + 61
        assert started + 3600 <= headers["X-RateLimit-Reset-Hour"] <= time.time() + 3601
    refused = api.usage(key)
    retry = _refused(refused, 60)
    headers = _limits(refused)
    assert headers["X-RateLimit-Remaining-Minute"] == 0
    # A refused request counts in no window.
    assert headers["X-RateLimit-Remaining-Hour"] == 1940
    assert abs(headers["X-RateLimit-Reset-Minute"] - (time.time() + retry)) <= 2
    assert _limits(api.usage(key))["X-RateLimit-Remaining-Hour"] == 1940


def test_ats_keys_have_the_same_defaults(api: Api) -> None:
    key = api.key("ats", api.ats())
    headers = _limits(api.usage(key))
    assert headers["X-RateLimit-Limit-Minute"] == 60
    assert headers["X-RateLimit-Limit-Hour"] == 2000


def test_the_defaults_come_from_the_settings(clients: Clients, db: Database) -> None:
    api = Api.bootstrap(clients(default_rate_limit_minute=2, default_rate_limit_hour=5), db)
    key = _company_key(api)
    assert [api.usage(key).status_code for _ in range(3)] == [200, 200, 429]
    assert _limits(api.usage(key))["X-RateLimit-Limit-Hour"] == 5


def _reference(per_minute: int, per_hour: int, requests: int) -> list[tuple[int, int, int]]:
    """Within one minute both windows are plain counters of admitted requests."""
    minute = hour = 0
    answers = []
    for _ in range(requests):
        admitted = minute < per_minute and hour < per_hour
        if admitted:
            minute, hour = minute + 1, hour + 1
        answers.append((200 if admitted else 429, per_minute - minute, per_hour - hour))
    return answers


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    per_minute=st.integers(1, 6),
    per_hour=st.one_of(st.none(), st.integers(1, 6)),
    requests=st.integers(1, 9),
)
def test_a_keys_own_limits_match_the_reference(
    api: Api, per_minute: int, per_hour: int | None, requests: int
) -> None:
    key = _company_key(api, rateLimitPerMinute=per_minute, rateLimitPerHour=per_hour)
    answers = []
    for _ in range(requests):
        response = api.usage(key)
        headers = _limits(response)
        assert headers["X-RateLimit-Limit-Minute"] == per_minute
        assert headers["X-RateLimit-Limit-Hour"] == (per_hour or 2000)
        if response.status_code == 429:
            _refused(response, 3600)
        answers.append(
            (
                response.status_code,
                headers["X-RateLimit-Remaining-Minute"],
                headers["X-RateLimit-Remaining-Hour"],
            )
        )
    assert answers == _reference(per_minute, per_hour or 2000, requests)


def test_an_hourly_limit_refuses_until_the_hour_frees_up(api: Api) -> None:
    key = _company_key(api, rateLimitPerMinute=100, rateLimitPerHour=2)
    assert [api.usage(key).status_code for _ in range(2)] == [200, 200]
    refused = api.usage(key)
    assert _refused(refused, 3600) > 3500
    assert _limits(refused)["X-RateLimit-Remaining-Minute"] == 98


def test_listed_keys_show_both_limits(api: Api) -> None:
    own = api.post(
        "/admin/api-keys",
        {
            "name": "limited",
            "kind": "platform",
            "scopes": ["read:billing"],
            "rateLimitPerMinute": 7,
            "rateLimitPerHour": 300,
        },
    )
    assert own.status_code == 201, own.text
    assert own.json()["data"]["rateLimitPerMinute"] == 7
    assert own.json()["data"]["rateLimitPerHour"] == 300
    listed = api.get("/admin/api-keys", limit=100).json()["data"]["items"]
    by_id = {item["id"]: item for item in listed}
    assert by_id[own.json()["data"]["id"]]["rateLimitPerHour"] == 300
    assert by_id[own.json()["data"]["id"]]["rateLimitPerMinute"] == 7
    defaulted = [item for item in listed if item["id"] != own.json()["data"]["id"]]
    assert all(item["rateLimitPerMinute"] is None for item in defaulted)
    assert all(item["rateLimitPerHour"] is None for item in defaulted)


@pytest.mark.parametrize("field", ["rateLimitPerMinute", "rateLimitPerHour"])
@pytest.mark.parametrize("value", [0, -1, 1.5, 2.0, "5", True, 10**12])
def test_limits_must_be_positive_integers(api: Api, field: str, value: Any) -> None:
    body = {"name": "k", "kind": "platform", "scopes": ["read:billing"], field: value}
    response = api.post("/admin/api-keys", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    fields = [error["field"] for error in response.json()["error"]["details"]["errors"]]
    assert any(field in name for name in fields), fields


# --- which answers carry the headers --------------------------------------------------------


def test_errors_after_authentication_carry_the_headers_and_count(api: Api) -> None:
    key = _company_key(api)
    forbidden = api.get("/admin/companies", key=key)
    assert forbidden.status_code == 403, forbidden.text
    malformed = api.usage(key, start="not-a-date")
    assert malformed.status_code == 400, malformed.text
    reversed_range = api.usage(key, start="2026-02-01", end="2026-01-01")
    assert reversed_range.status_code == 400, reversed_range.text
    remaining = [
        _limits(answer)["X-RateLimit-Remaining-Minute"]
        for answer in (forbidden, malformed, reversed_range)
    ]
    assert remaining == [59, 58, 57]
    for answer in (forbidden, malformed, reversed_range):
        assert set(_limits(answer)) == set(MINUTE + HOUR)


def test_a_404_after_authentication_carries_the_headers(api: Api, db: Database) -> None:
    key = make_key(db, kind="platform", scopes=["admin"], rateLimitPerMinute=5)
    missing = api.get("/admin/companies/7b1f9f7e-3c1e-4d0a-9a52-2d6f0f6a1c11", key=key)
    assert missing.status_code == 404, missing.text
    # A platform key's own per-minute limit; its hour stays unlimited.
    assert set(_limits(missing)) == set(MINUTE)
    assert _limits(missing)["X-RateLimit-Remaining-Minute"] == 4


def test_unauthenticated_answers_carry_no_limit_headers(api: Api) -> None:
    key = _company_key(api)
    _no_limit_headers(api.usage("sk_live_" + "x" * 43))
    _no_limit_headers(api.client.get("/billing/usage"))
    # An unknown path is answered before any key is looked at.
    _no_limit_headers(api.get("/no/such/path", key=key))
    assert _limits(api.usage(key))["X-RateLimit-Remaining-Minute"] == 59


def test_an_unlimited_platform_key_has_no_headers(api: Api) -> None:
    for _ in range(70):
        response = api.usage()
        assert response.status_code == 200, response.text
        _no_limit_headers(response)
        assert "Retry-After" not in response.headers


def test_a_platform_key_with_its_own_limit_is_limited(api: Api, db: Database) -> None:
    key = make_key(db, kind="platform", scopes=["read:billing"], rateLimitPerHour=2)
    answers = [api.usage(key) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert set(_limits(answers[2])) == set(HOUR)
    _refused(answers[2], 3600)


def _stored_events(db: Database) -> int:
    with db.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(UsageEvent)) or 0


def test_a_refused_request_has_no_effect(api: Api, db: Database) -> None:
    company = api.company()
    writer = make_key(db, kind="platform", scopes=["write:usage"], rateLimitPerMinute=1)
    assert api.post("/usage/events", {"events": [event(company)]}, key=writer).status_code == 200
    assert _stored_events(db) == 1
    refused = api.post("/usage/events", {"events": [event(company)]}, key=writer)
    _refused(refused, 60)
    assert _stored_events(db) == 1


# --- failed authentication, per address -----------------------------------------------------


def _guess() -> str:
    return keys.generate_key()


def test_guessed_keys_are_throttled_per_address(clients: Clients, db: Database) -> None:
    client = clients()
    api = Api.bootstrap(client, db)
    for _ in range(100):
        response = api.usage(_guess())
        assert response.status_code == 401, response.text
        _no_limit_headers(response)
    guessed = api.usage(_guess())
    _refused(guessed, 60)
    _no_limit_headers(guessed)
    # The address is refused before any key is looked at, valid ones too,
    # so a guesser learns nothing while it waits.
    _refused(api.usage(), 60)


def test_another_address_is_not_throttled(clients: Clients, db: Database) -> None:
    settings: dict[str, Any] = {"auth_failures_per_minute": 2}
    guesser = Api.bootstrap(clients(**settings), db)
    assert [guesser.usage(_guess()).status_code for _ in range(3)] == [401, 401, 429]
    # Every TestClient is one process; the same settings behind another address.
    neighbour = Api(clients(client_address="10.1.2.3", **settings), guesser.platform_key)
    assert neighbour.usage().status_code == 200
    assert neighbour.usage(_guess()).status_code == 401


def _failures_reference(limit: int, valid: list[bool]) -> list[int]:
    """Once an address has `limit` failures in the minute, it gets 429 for anything."""
    failures = 0
    statuses = []
    for ok in valid:
        if failures >= limit:
            statuses.append(429)
        elif ok:
            statuses.append(200)
        else:
            failures += 1
            statuses.append(401)
    return statuses


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(limit=st.integers(1, 4), valid=st.lists(st.booleans(), min_size=1, max_size=10))
def test_failures_per_address_match_the_reference(
    clients: Clients, db: Database, limit: int, valid: list[bool]
) -> None:
    api = Api.bootstrap(clients(auth_failures_per_minute=limit), db)
    statuses = [api.usage(api.platform_key if ok else _guess()).status_code for ok in valid]
    assert statuses == _failures_reference(limit, valid)


def test_a_revoked_keys_requests_count_as_failures(clients: Clients, db: Database) -> None:
    api = Api.bootstrap(clients(auth_failures_per_minute=3), db)
    revoked = api.created(
        "/admin/api-keys", {"name": "old", "kind": "platform", "scopes": ["read:billing"]}
    )
    deleted = api.client.delete(
        f"/admin/api-keys/{revoked['id']}", headers=api.auth(api.platform_key)
    )
    assert deleted.status_code == 200, deleted.text
    answers = [api.usage(revoked["key"]).status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]


# --- Redis ----------------------------------------------------------------------------------


def test_two_apps_share_one_limit_through_redis(
    clients: Clients, db: Database, redis_settings: dict[str, str]
) -> None:
    first = Api.bootstrap(clients(**redis_settings), db)
    second = Api(clients(**redis_settings), first.platform_key)
    key = make_key(db, kind="platform", scopes=["read:billing"], rateLimitPerMinute=4)
    answers = [(first if n % 2 else second).usage(key) for n in range(5)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 429]
    remaining = [_limits(answer)["X-RateLimit-Remaining-Minute"] for answer in answers]
    assert remaining == [3, 2, 1, 0, 0]
    _refused(first.usage(key), 60)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_redis_fails_over_to_this_process(
    clients: Clients, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Documented choice: limits keep holding per process, with one warning."""
    redis_url = f"redis://127.0.0.1:{_closed_port()}/0"
    api = Api.bootstrap(clients(redis_url=redis_url), db)
    key = make_key(db, kind="platform", scopes=["read:billing"], rateLimitPerMinute=2)
    with caplog.at_level(logging.WARNING, logger="tally.ratelimit"):
        answers = [api.usage(key) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert _limits(answers[0])["X-RateLimit-Remaining-Minute"] == 1
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1, warnings
    assert "Redis unreachable" in warnings[0]
    assert key not in warnings[0]


# --- pure parts -----------------------------------------------------------------------------


def _record(kind: str, per_minute: int | None, per_hour: int | None) -> KeyRecord:
    """A key's row as authentication reads it, with these limits of its own."""
    return KeyRecord(
        id=uuid.uuid4(),
        kind=kind,
        company_id=None,
        ats_integration_id=None,
        scopes=["read:billing"],
        allowed_ips=None,
        expires_at=None,
        revoked_at=None,
        last_used_at=None,
        rate_limit_per_minute=per_minute,
        rate_limit_per_hour=per_hour,
    )


@given(
    kind=st.sampled_from(["company", "ats", "platform"]),
    per_minute=st.one_of(st.none(), st.integers(1, 10**6)),
    per_hour=st.one_of(st.none(), st.integers(1, 6 * 10**7)),
)
def test_key_limits_follow_the_kind_and_the_keys_own(
    kind: str, per_minute: int | None, per_hour: int | None
) -> None:
    key = _record(kind, per_minute, per_hour)
    defaults = Settings(default_rate_limit_minute=7, default_rate_limit_hour=70)
    limited = kind != "platform"
    expected = {
        60: per_minute or (7 if limited else None),
        3600: per_hour or (70 if limited else None),
    }
    got = {item.get_expiry(): item.amount for item in key_limits(key, defaults)}
    assert got == {seconds: amount for seconds, amount in expected.items() if amount}


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "unix:///tmp/r.sock"])
def test_only_redis_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(redis_url=url)


def test_counting_in_memory_never_leaves_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-process counters cost no worker thread, however many keys are counted."""
    hops: list[object] = []
    real = asyncio.to_thread

    async def counted(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    limiter = RateLimiter(Settings(redis_url=None))

    async def traffic() -> list[bool]:
        keys = [_record("company", 3, None) for _ in range(20)]
        allowed = []
        for _ in range(4):
            for key in keys:
                allowed.append((await limiter.admit_key(key)).allowed)
                # Let anything the limiter scheduled run, as between requests.
                await asyncio.sleep(0)
        await limiter.close()
        return allowed

    allowed = asyncio.run(traffic())
    # Three a minute per key: the fourth round is refused, and nothing hopped.
    assert allowed == [True] * 60 + [False] * 20
    assert hops == []
