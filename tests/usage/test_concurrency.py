"""Concurrent writers: exact running totals, no lock-ups, bounded waits, collisions
between companies answered as the SPEC says (docs/concurrency.md)."""

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import simplejson
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError

from tally.app import create_app
from tally.core.instants import format_instant, utcnow
from tally.db import failures
from tally.db.admission import WriteGate
from tally.db.engine import Database
from tally.errors import ServiceUnavailable
from tally.settings import Settings
from tally.usage import ingest
from tally.usage.models import UsageEvent
from tests import servers
from tests.factories import Api, event

THREADS = 6
BATCHES = 8


def _worker(db: Database, company: str, thread: int, errors: list[BaseException]) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        for batch in range(BATCHES):
            events = [
                event(
                    company,
                    f"t{thread}-b{batch}-{n}",
                    occurredAt=format_instant(
                        base + timedelta(hours=(thread * 7 + batch * 3 + n) % 48)
                    ),
                    minutes=1 + n,
                )
                for n in range(5)
            ]
            with db.transaction(write=True) as session:
                ingest.ingest(session, {"events": events}, utcnow())
    except BaseException as exc:
        errors.append(exc)


def test_parallel_batches_add_up_exactly(api: Api, db: Database) -> None:
    company = api.company("Concurrent Co", "minutes")
    key = api.key("company", company)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_worker, args=(db, company, n, errors)) for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with db.transaction(write=False) as session:
        count = session.scalar(select(func.count()).select_from(UsageEvent))
    assert count == THREADS * BATCHES * 5
    for start, end in (
        ("2026-03-01", "2026-03-03"),
        ("2026-03-01T05:30:00Z", "2026-03-02T17:00:00Z"),
    ):
        data = api.usage(key, start=start, end=end).json()["data"]
        low, high = (datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (start, end))
        if low.tzinfo is None:
            low, high = low.replace(tzinfo=UTC), high.replace(tzinfo=UTC)
        with db.transaction(write=False) as session:
            expected = session.execute(
                select(func.count(), func.coalesce(func.sum(UsageEvent.minutes), 0)).where(
                    UsageEvent.occurred_at >= low, UsageEvent.occurred_at < high
                )
            ).one()
        entry = data["breakdownByCostKey"][0]
        assert entry["events"] == expected[0]
        assert entry["minutesUsed"] * 1_000_000 == expected[1]


# --- no lock-ups, bounded waits, collisions between companies ----------------------------------

WRITERS = 12  # three times the worker threads below


def _app_client(db: Database, **settings: Any) -> TestClient:
    app = create_app(Settings(database_url=db.url, **settings), database=db)
    return TestClient(app, raise_server_exceptions=False)


def _post(client: TestClient, key: str, events: list[dict[str, Any]]) -> Response:
    body = simplejson.dumps({"events": events}, use_decimal=True)
    headers = Api.auth(key) | {"Content-Type": "application/json"}
    return client.post("/usage/events", content=body, headers=headers)


def test_more_concurrent_writers_than_threads_all_finish(api: Api, db: Database) -> None:
    """The old design deadlocked here: every thread waited for the write lock while
    its holder waited for a thread to commit."""
    companies = [api.company(f"Co {n}", "minutes") for n in range(3)]
    results: list[int] = []
    health: list[float] = []
    with _app_client(db, worker_threads=4) as client:

        def write(n: int) -> None:
            events = [
                event(
                    companies[n % 3],
                    f"w{n}-{i}",
                    minutes=1 + i % 7,
                    interviewId=f"i{n % 3}-{n % 5}",
                )
                for i in range(200)
            ] + [event(companies[n % 3], f"shared-{n % 3}-{i}") for i in range(20)]
            results.append(_post(client, api.platform_key, events).status_code)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            began = time.monotonic()
            assert client.get("/healthz").status_code == 200
            health.append(time.monotonic() - began)
            time.sleep(0.05)
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "writers locked up"
    assert results == [200] * WRITERS
    with db.transaction(write=False) as session:
        count = session.scalar(select(func.count()).select_from(UsageEvent))
    assert count == WRITERS * 200 + 3 * 20
    # In process, the test's own client threads share the GIL with the server:
    # the 1-second bound is asserted against a real server in tests/load/.
    assert max(health, default=0) < 5.0


@contextmanager
def _holding_write(db: Database, company: str, events: list[dict[str, Any]]) -> Iterator[None]:
    """Another writer's open transaction: it stored these events (company locked), no commit."""
    session = db.session(write=True)
    try:
        ingest.ingest(session, {"events": events}, utcnow())
        yield
        session.commit()
    finally:
        session.close()


def _later(action: Callable[[], Response], into: list[Response]) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.append(action()))
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("theirs", "mine", "status", "code", "field"),
    [
        # The same new event id, another company: 409 once the other commits.
        ({"id": "same"}, {"id": "same"}, 409, "EVENT_CONFLICT", None),
        # The same new interview id, another company: 422 naming companyId.
        ({"interviewId": "iv"}, {"interviewId": "iv"}, 422, "INVALID_EVENTS", "companyId"),
    ],
)
def test_a_collision_with_another_companys_open_batch_is_a_4xx_not_a_500(
    api: Api,
    db: Database,
    theirs: dict[str, Any],
    mine: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    """Different companies do not wait for each other's lock, but a platform-wide id
    makes the second insert wait for the first commit, then fail: retried, it sees
    the stored row and answers as the SPEC says."""
    acme, globex = api.company("Acme", "minutes"), api.company("Globex", "minutes")
    answers: list[Response] = []
    with _app_client(db) as client:
        with _holding_write(db, acme, [event(acme, "a1", **theirs)]):
            mine_events = [event(globex, "g1", **mine), event(globex, "g2")]
            thread = _later(lambda: _post(client, api.platform_key, mine_events), answers)
            time.sleep(0.5)  # the request is now waiting on the open transaction
        thread.join(timeout=60)
    [answer] = answers
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert {item["field"] for item in error["details"]["errors"]} == {field}
    with db.transaction(write=False) as session:
        stored = session.scalars(select(UsageEvent.id).order_by(UsageEvent.id)).all()
    assert stored == (["same"] if "id" in theirs else ["a1"])


def test_a_write_that_cannot_get_its_lock_in_time_is_a_503_and_stores_nothing(
    api: Api, db: Database
) -> None:
    acme = api.company("Acme", "minutes")
    impatient = Database(db.url, wait_seconds=0.5)
    app = create_app(Settings(database_url=db.url, write_wait_seconds=0.5), database=impatient)
    try:
        with (
            TestClient(app, raise_server_exceptions=False) as client,
            _holding_write(db, acme, [event(acme, "held")]),
        ):
            began = time.monotonic()
            answer = _post(client, api.platform_key, [event(acme, "late")])
            took = time.monotonic() - began
            assert client.get("/healthz").status_code == 200
    finally:
        impatient.dispose()
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert took < 5
    with db.transaction(write=False) as session:
        assert session.scalars(select(UsageEvent.id)).all() == ["held"]


def test_writers_of_different_companies_do_not_wait_for_each_other(api: Api, db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    acme, globex = api.company("Acme", "minutes"), api.company("Globex", "minutes")
    with (
        _app_client(db, write_wait_seconds=2) as client,
        _holding_write(db, acme, [event(acme, "held")]),
    ):
        began = time.monotonic()
        answer = _post(client, api.platform_key, [event(globex, "free")])
        took = time.monotonic() - began
    assert answer.status_code == 200, answer.text
    assert took < 2


# --- the admission gate on the event loop -------------------------------------------------------


def test_the_gate_orders_one_company_and_lets_others_through() -> None:
    async def scenario() -> None:
        gate = WriteGate(per_company=True, wait_seconds=0.2, worker_threads=4)
        a, b = uuid.uuid4(), uuid.uuid4()
        async with gate.turn([a, b], gate.deadline()):
            async with gate.turn([uuid.uuid4()], gate.deadline()):
                pass  # another company: no wait
            with pytest.raises(ServiceUnavailable):
                async with gate.turn([b], gate.deadline()):
                    pytest.fail("entered a company's turn held by another writer")
        async with gate.turn([b, a], gate.deadline()):
            pass  # released, whatever the order it is asked in
        assert gate._turns._locks == {}

    asyncio.run(scenario())


def test_on_sqlite_the_gate_has_one_turn_for_everyone() -> None:
    async def scenario() -> None:
        gate = WriteGate(per_company=False, wait_seconds=0.1, worker_threads=4)
        async with gate.turn([uuid.uuid4()], gate.deadline()):
            with pytest.raises(ServiceUnavailable):
                async with gate.turn([uuid.uuid4()], gate.deadline()):
                    pytest.fail("two SQLite writers at once")

    asyncio.run(scenario())


def test_an_unreachable_database_is_a_503_with_retry_after(free_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port}/nowhere"
    app = create_app(Settings(database_url=url, write_wait_seconds=1))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200  # liveness needs no database
        answer = client.get("/billing/usage", headers=Api.auth("sk_live_" + "x" * 43))
        posted = _post(client, "sk_live_" + "x" * 43, [event(str(uuid.uuid4()))])
    for response in (answer, posted):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        body = response.json()
        assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "nowhere" not in response.text
        assert "postgres" not in response.text


def test_only_waiting_failures_are_503s() -> None:
    def operational(message: str) -> OperationalError:
        return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))

    assert failures.unavailable(operational("database is locked")) is not None
    assert failures.unavailable(operational("no such table: usage_events")) is None
    assert failures.unavailable(SATimeoutError("QueuePool limit reached")) is not None
    assert failures.unavailable(ValueError("a bug")) is None


@pytest.fixture
def free_port() -> int:
    return servers.free_port()
