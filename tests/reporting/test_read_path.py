"""The fixed cost of GET /billing/usage: one statement to authenticate, one thread hop.

Authentication reads the key and the companies it is tied to in one
statement on the event loop's connection; what reads the usage and encodes
the answer runs in one worker thread (docs/performance.md, "The fixed cost of
a read").
"""

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any

import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event

from tally.auth import keys
from tally.auth import service as auth_service
from tally.auth.tenancy import visible_companies
from tally.core.envelope import Envelope, EnvelopeResponse
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.errors import CompanyNotAccessible
from tally.reporting.views import dumps, success_json
from tests.factories import Api
from tests.factories import event as usage_event

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


@contextmanager
def _statements(engines: list[Engine]) -> Iterator[list[str]]:
    """The SQL statements sent meanwhile through these engines, transaction control left out."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
            seen.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


@contextmanager
def _thread_hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[..., Any]]]:
    """Every function handed to a worker thread meanwhile (Starlette's run_in_threadpool too)."""
    calls: list[Callable[..., Any]] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await original(func, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(anyio.to_thread, "run_sync", counting)
        yield calls


@pytest.fixture
def tenants(api: Api) -> dict[str, str]:
    """An ATS with two companies, a company key and an ATS key, each used once already."""
    ats = api.ats()
    first = api.company("Acme", "minutes", ats)
    second = api.company("Bolt", "credits", ats)
    lone = api.company("Lone", "minutes")
    api.rule(costKey="interview_minutes", baseCost=1, effectiveFrom="2020-01-01T00:00:00Z")
    api.ingest(usage_event(first), usage_event(second))
    found = {
        "ats": ats,
        "first": first,
        "second": second,
        "lone": lone,
        "company_key": api.key("company", first),
        "ats_key": api.key("ats", ats),
    }
    # The first use of a key records lastUsedAt (a write); later ones within
    # the resolution do not: measure those.
    for key in (found["company_key"], found["ats_key"]):
        assert api.usage(key, start="2026-02-01T00:00:00Z").status_code == 200
    return found


WINDOW = {"start": "2026-02-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}


def test_authentication_and_tenancy_are_one_statement(
    api: Api, db: Database, tenants: dict[str, str]
) -> None:
    for key, companies in ((tenants["company_key"], 1), (tenants["ats_key"], 2)):
        with _statements([db.loop_engine]) as on_loop, _statements([db.engine]) as in_thread:
            response = api.usage(key, **WINDOW)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]["companies"]) == companies
        # Authentication: one statement, reading the key and its companies.
        assert len(on_loop) == 1, on_loop
        assert "api_keys" in on_loop[0]
        assert "companies" in on_loop[0]
        # The report looks neither the key nor the companies up again (its
        # own reads of the usage go through the driver's cursor, unseen here).
        assert not [sql for sql in in_thread if "api_keys" in sql or "FROM companies" in sql]


def test_a_read_makes_one_thread_hop(
    api: Api, tenants: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in (tenants["company_key"], tenants["ats_key"], api.platform_key):
        # (The platform key's first use records lastUsedAt: use it once first.)
        api.usage(key, **WINDOW)
        with _thread_hops(monkeypatch) as hops:
            response = api.usage(key, **WINDOW)
        assert response.status_code == 200, response.text
        assert len(hops) == 1, hops
    with _thread_hops(monkeypatch) as hops:
        assert api.client.get("/healthz").status_code == 200
    assert hops == []


def test_refusals_make_no_more_hops(
    api: Api, tenants: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with _thread_hops(monkeypatch) as hops:
        unknown = api.usage(keys.generate_key())
        unknown_param = api.usage(tenants["company_key"], company_id=tenants["first"])
        bad_window = api.usage(tenants["company_key"], start="2026-03-01", end="2026-02-01")
    assert unknown.json()["error"]["code"] == "INVALID_API_KEY"
    assert unknown_param.json()["error"]["code"] == "VALIDATION_ERROR"
    assert bad_window.json()["error"]["code"] == "INVALID_DATE_RANGE"
    # Refused on the loop, before any worker thread.
    assert hops == []
    with _thread_hops(monkeypatch) as hops:
        other = api.usage(tenants["ats_key"], companyId=tenants["lone"])
    assert other.json()["error"]["code"] == "COMPANY_NOT_ACCESSIBLE"
    assert len(hops) == 1, hops


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    choice=st.integers(0, 2),
    requested=st.sampled_from(["none", "first", "second", "lone", "unknown"]),
)
def test_companies_read_with_the_key_scope_as_a_separate_read_would(
    api: Api, db: Database, tenants: dict[str, str], choice: int, requested: str
) -> None:
    """visible_companies gives the same answer (or the same 403) from either source."""
    candidates = [tenants["company_key"], tenants["ats_key"], api.platform_key]
    key = candidates[choice]
    wanted = uuid.uuid4() if requested == "unknown" else None
    if requested in tenants:
        wanted = uuid.UUID(tenants[requested])
    with db.loop_engine.connect() as connection:
        principal, _ = auth_service.authenticate(connection, key, None, utcnow())
    assert principal.companies is not None
    separately = replace(principal, companies=None)
    with db.transaction(write=False) as session:
        outcomes = []
        for caller in (principal, separately):
            try:
                outcomes.append(sorted(visible_companies(session, caller, wanted)))
            except CompanyNotAccessible as exc:
                outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]


amounts = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False
)
wire = st.recursive(
    st.none() | st.booleans() | st.integers() | amounts | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(data=st.dictionaries(st.text(), wire, max_size=5))
def test_the_pre_encoded_envelope_is_byte_for_byte_the_envelope_response(
    data: dict[str, Any],
) -> None:
    encoded = success_json(dumps(data))
    decoded = EnvelopeResponse(Envelope[Any](data=data, timestamp="x")).body
    # Same bytes but for the timestamp (taken at two different moments).
    before, marker, timestamp = encoded.rpartition(b'"timestamp":')
    assert before + marker == decoded.rpartition(b'"timestamp":')[0] + marker
    assert re.fullmatch(rb'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"}', timestamp), timestamp
