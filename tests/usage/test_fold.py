"""The tail of hourly changes (usage_deltas) and its folding into the running totals.

Writes append to the tail; `fold` moves it into usage_buckets. Whatever the
tail holds, and whenever a fold runs (between batches, between voids, while
a report reads), every answer equals the plain-Python reference, and
`tally verify` finds nothing wrong.
"""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tally.app import create_app
from tally.companies.repository import CompanyRef
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.plans.usage import used_by_company
from tally.settings import Settings, get_settings
from tally.usage import fold, ingest, verify
from tally.usage.models import UsageBucket, UsageDelta
from tally.usage.verify import find_mismatches
from tests.conftest import wipe
from tests.factories import Api, event
from tests.usage import reference
from tests.usage.test_properties import (
    PHASES,
    QUERY_SPELLINGS,
    SLOW,
    World,
    edges,
    spell,
    usage,
    worlds,
)


@pytest.fixture
def quiet(db: Database) -> Iterator[TestClient]:
    """A client whose app folds nothing by itself: the tests fold when they choose."""
    app = create_app(Settings(database_url=db.url, usage_folder=False), database=db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def tail_rows(db: Database) -> int:
    with db.transaction(write=False) as session:
        return int(session.execute(select(func.count()).select_from(UsageDelta)).scalar_one())


def fold_some(db: Database, limit: int = fold.MAX_FOLD_ROWS) -> int:
    return db.write(lambda session: fold.fold(session, limit))


def mismatches(db: Database) -> list[Any]:
    with db.transaction(write=False) as session:
        return find_mismatches(session)


# --- ingestion, voids and folds interleaved at random points ---------------------------------


def _build_with_folds(client: TestClient, db: Database, world: World, data: st.DataObject) -> Api:
    wipe(db)
    api = Api.bootstrap(client, db)
    ats_ids = [api.ats(f"ATS {index}") for index in range(world.ats_count)]
    for company in world.companies:
        ats = ats_ids[company.ats] if company.ats is not None else None
        api.company(company.name, company.billing, ats, company.id)
    for rule in world.rules:
        api.rule(**rule)
    limits = st.sampled_from((1, 2, 5, fold.MAX_FOLD_ROWS))

    def maybe_fold(label: str) -> None:
        if data.draw(st.booleans(), label=label):
            fold_some(db, data.draw(limits, label="fold limit"))

    for batch, voids in zip(world.batches, world.voids_after, strict=True):
        maybe_fold("fold before a batch")
        api.ingest(*batch)
        for event_id in voids:
            maybe_fold("fold before a void")
            response = api.void(event_id)
            assert response.status_code == 200, response.text
    for company in world.companies:
        if company.moves_to is not None:
            response = api.client.patch(
                f"/admin/companies/{company.id}",
                json={"billingSystem": company.moves_to},
                headers=api.auth(api.platform_key),
            )
            assert response.status_code == 200, response.text
    return api


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(world=worlds(), data=st.data())
def test_answers_match_the_reference_whatever_is_folded_when(
    quiet: TestClient, db: Database, world: World, data: st.DataObject
) -> None:
    api = _build_with_folds(quiet, db, world, data)
    companies = world.final_companies()
    windows = []
    for _ in range(2):
        low, high = data.draw(edges(world), label="edge"), data.draw(edges(world), label="edge")
        start, end = min(low, high), max(low, high) + timedelta(microseconds=int(low == high))
        windows.append((start, end))

    def check(when: str) -> None:
        for start, end in windows:
            expected = reference.usage_data(
                world.sent, world.voided, companies, start, end, world.rules
            )
            got = usage(
                api,
                api.platform_key,
                spell(start, data.draw(QUERY_SPELLINGS)),
                spell(end, data.draw(QUERY_SPELLINGS)),
            )
            assert got == expected, when

    # With whatever tail the interleaving left, then with none.
    check("with the tail left unfolded")
    assert mismatches(db) == [], "verify with the tail left unfolded"
    db.write(fold.fold_all)
    assert tail_rows(db) == 0
    check("after folding everything")
    assert mismatches(db) == []


# --- folds racing reads ----------------------------------------------------------------------

START = datetime(2025, 6, 1, tzinfo=UTC)


def _scattered_batches(companies: list[str], batches: int, size: int) -> list[list[dict[str, Any]]]:
    """Events over a year, in shuffled order, so the tail has many distinct hours."""
    out = []
    for number in range(batches):
        batch = []
        for index in range(size):
            serial = number * size + index
            at = START + timedelta(hours=(serial * 7919) % (24 * 365), minutes=serial % 60)
            batch.append(
                event(
                    companies[serial % len(companies)],
                    f"race-{serial}",
                    costKey=("interview_minutes", "sourcing")[serial % 2],
                    occurredAt=at.isoformat(),
                    minutes=(serial % 13) + 0.25,
                    interviewId=f"iv-{serial % len(companies)}-{serial % 37}",
                )
            )
        out.append(batch)
    return out


def test_a_fold_between_two_reads_of_a_report_never_changes_its_answer(
    quiet: TestClient, db: Database
) -> None:
    api = Api.bootstrap(quiet, db)
    ids = [api.company(f"Company {n}", "minutes") for n in range(3)]
    for batch in _scattered_batches(ids, 4, 150):
        api.ingest(*batch)
    assert tail_rows(db) > 400
    params = {"start": "2025-05-01T00:00:00Z", "end": "2026-07-01T00:00:00Z"}
    expected = api.usage(**params).json()["data"]
    refs = [CompanyRef(id=uuid, name="x", billing_system="minutes") for uuid in map(UUID, ids)]
    year = (START - timedelta(days=1), START + timedelta(days=400))
    with db.transaction(write=False) as session:
        used = used_by_company(session, refs, *year)
    assert sum(used.values()) > 0

    done = threading.Event()
    failures: list[BaseException] = []

    def folder() -> None:
        try:
            while fold_some(db, 3):
                pass
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=folder)
    thread.start()
    reads = 0
    try:
        while not done.is_set() or reads < 5:
            assert api.usage(**params).json()["data"] == expected
            with db.transaction(write=False) as session:
                assert used_by_company(session, refs, *year) == used
            reads += 1
    finally:
        thread.join()
    assert failures == []
    assert tail_rows(db) == 0
    assert api.usage(**params).json()["data"] == expected
    assert mismatches(db) == []


# --- the tail itself -------------------------------------------------------------------------


def test_a_batch_appends_one_row_per_company_cost_key_and_hour(
    quiet: TestClient, db: Database
) -> None:
    api = Api.bootstrap(quiet, db)
    company = api.company("Acme", "minutes")
    at = "2026-03-01T10:{:02d}:00Z"
    api.ingest(
        event(company, "a", occurredAt=at.format(1), minutes=2),
        event(company, "b", occurredAt=at.format(59), minutes=3),
        event(company, "c", occurredAt="2026-03-01T11:00:00Z", minutes=1),
        event(company, "d", occurredAt=at.format(5), minutes=4, isTest=True),
    )
    with db.transaction(write=False) as session:
        rows = session.execute(
            select(UsageDelta.hour_start, UsageDelta.events, UsageDelta.minutes).order_by(
                UsageDelta.hour_start
            )
        ).all()
        stored_buckets = session.execute(select(func.count()).select_from(UsageBucket)).scalar()
    assert [(row.hour_start.hour, row.events, row.minutes) for row in rows] == [
        (10, 2, 5_000_000),
        (11, 1, 1_000_000),
    ]
    assert stored_buckets == 0
    assert fold_some(db) == 2
    assert tail_rows(db) == 0
    assert mismatches(db) == []


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_fold_leaves_the_planner_settings_of_its_transaction_as_they_were(
    quiet: TestClient, db: Database
) -> None:
    api = Api.bootstrap(quiet, db)
    company = api.company("Acme", "minutes")
    api.ingest(event(company, "a", occurredAt="2026-03-01T10:00:00Z", minutes=2))
    names = ("enable_hashjoin", "enable_mergejoin", "jit")

    def fold_and_look(session: Session) -> tuple[list[str], int]:
        session.execute(text("SET LOCAL jit = off"))  # a caller's own choice survives too
        moved = fold.fold(session)
        return [session.execute(text(f"SHOW {name}")).scalar_one() for name in names], moved

    settings_after, moved = db.write(fold_and_look)
    assert moved == 1
    assert settings_after == ["on", "on", "off"]
    assert mismatches(db) == []


def test_a_void_appends_the_negative_change(quiet: TestClient, db: Database) -> None:
    api = Api.bootstrap(quiet, db)
    company = api.company("Acme", "minutes")
    sent = [event(company, "a", occurredAt="2026-03-01T10:00:00Z", minutes=2)]
    api.ingest(*sent)
    db.write(fold.fold_all)
    assert api.void("a").status_code == 200
    with db.transaction(write=False) as session:
        row = session.execute(select(UsageDelta)).scalar_one()
    assert (row.events, row.minutes, row.credits, row.interviews) == (-1, -2_000_000, 0, 0)
    window = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}
    expected = reference.usage_data(
        sent,
        {"a"},
        [reference.Company(company, "Acme", "minutes")],
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
        [],
    )
    assert api.usage(**window).json()["data"] == expected
    assert mismatches(db) == []
    db.write(fold.fold_all)
    assert api.usage(**window).json()["data"] == expected


def test_verify_repair_folds_the_tail_first(quiet: TestClient, db: Database) -> None:
    api = Api.bootstrap(quiet, db)
    company = api.company("Acme", "minutes")
    api.ingest(event(company, "a", occurredAt="2026-03-01T10:00:00Z", minutes=2))
    assert tail_rows(db) == 1
    assert verify.run(db, fix=True) == []
    assert tail_rows(db) == 0
    assert verify.run(db, fix=False) == []


def test_the_background_folder_empties_the_tail(db: Database) -> None:
    app = create_app(
        Settings(database_url=db.url, usage_fold_rows=1, usage_fold_seconds=0.05), database=db
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api.bootstrap(client, db)
        company = api.company("Acme", "minutes")
        api.ingest(event(company, "a", occurredAt=utcnow().isoformat(), minutes=2))
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while tail_rows(db) and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
        assert tail_rows(db) == 0
        assert app.state.folder.folded >= 1
    assert mismatches(db) == []


def _platform_chart_is_every_company_summed(api: Api) -> list[dict[str, Any]]:
    """The platform's monthly chart (the units' totals) equals the default answer's
    top-level buckets (every company computed alone); those buckets."""
    params = {
        "start": "2025-05-01T00:00:00Z",
        "end": "2026-07-01T00:00:00Z",
        "granularity": "month",
    }
    full: list[dict[str, Any]] = api.get("/billing/usage/series", **params).json()["data"][
        "buckets"
    ]
    chart = api.get("/billing/usage/series", **params, companySeries="none").json()["data"]
    assert chart["buckets"] == full
    return full


def test_billing_system_changes_racing_batches_and_folds_keep_the_units_totals(
    quiet: TestClient, db: Database
) -> None:
    """A company flips billing system while batches of it and others are
    stored and folded in other threads: its history moves between the units'
    totals (usage_unit_buckets) in the PATCH, its tail goes wherever it is
    when folded, and at the end `tally verify` finds the units' totals equal
    to the companies' and the platform's chart equals every company summed."""
    api = Api.bootstrap(quiet, db)
    ids = [api.company(f"Company {n}", ("minutes", "credits")[n % 2]) for n in range(4)]
    for key in ("interview_minutes", "sourcing"):
        api.rule(costKey=key, baseCost=1, effectiveFrom="2020-01-01T00:00:00Z")
    batches = _scattered_batches(ids, 8, 100)
    api.ingest(*batches[0])
    failures: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    def writer() -> None:
        for batch in batches[1:]:
            result = db.write(
                lambda session, b=batch: ingest.ingest(session, {"events": b}, utcnow())
            )
            assert result.accepted == len(batch)

    def folder() -> None:
        for _ in range(40):
            fold_some(db, 50)

    threads = [threading.Thread(target=run, args=(work,)) for work in (writer, folder)]
    for thread in threads:
        thread.start()
    flips = 0
    # An odd number of flips: the company ends in the other unit.
    while any(thread.is_alive() for thread in threads) or flips < 5 or flips % 2 == 0:
        system = ("credits", "minutes")[flips % 2]
        response = api.client.patch(
            f"/admin/companies/{ids[0]}",
            json={"billingSystem": system},
            headers=api.auth(api.platform_key),
        )
        assert response.status_code == 200, response.text
        flips += 1
    for thread in threads:
        thread.join()
    assert failures == []
    assert flips >= 5
    assert mismatches(db) == []
    db.write(fold.fold_all)
    assert mismatches(db) == []
    full = _platform_chart_is_every_company_summed(api)
    assert sum(bucket["totalInterviews"] for bucket in full) > 0


@pytest.fixture
def inline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """TALLY_USAGE_FOLD_INLINE=1: every write shifts the running totals itself."""
    monkeypatch.setenv("TALLY_USAGE_FOLD_INLINE", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("TALLY_USAGE_FOLD_INLINE")
    get_settings.cache_clear()


def test_inline_writes_from_many_threads_keep_every_total(
    inline: None, quiet: TestClient, db: Database
) -> None:
    """Inline writes (no tail) of different companies meet on the units'
    totals: on PostgreSQL each takes the fold lock before shifting them, so
    four writers at once neither collide on a new unit bucket nor deadlock."""
    api = Api.bootstrap(quiet, db)
    ids = [api.company(f"Company {n}", ("minutes", "credits")[n % 2]) for n in range(4)]
    for key in ("interview_minutes", "sourcing"):
        api.rule(costKey=key, baseCost=1, effectiveFrom="2020-01-01T00:00:00Z")
    # Each writer its own company, so batches share no row but the units' totals.
    batches = [_scattered_batches([company], 6, 60) for company in ids]
    for number, per_company in enumerate(batches):
        for batch in per_company:
            for item in batch:
                item["id"] = f"{number}-{item['id']}"
                item["interviewId"] = f"{number}-{item['interviewId']}"
    failures: list[BaseException] = []
    # Each round's batches start together: two companies of a unit create
    # the same new unit buckets at the same moment.
    rounds = threading.Barrier(len(batches), timeout=60)

    def writer(per_company: list[list[dict[str, Any]]]) -> None:
        try:
            for batch in per_company:
                rounds.wait()
                result = db.write(
                    lambda session, b=batch: ingest.ingest(session, {"events": b}, utcnow())
                )
                assert result.accepted == len(batch)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
            rounds.abort()  # the other writers stop at their next round

    threads = [threading.Thread(target=writer, args=(each,)) for each in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert tail_rows(db) == 0
    assert mismatches(db) == []
    full = _platform_chart_is_every_company_summed(api)
    assert sum(bucket["breakdownByCostKey"] != [] for bucket in full) > 6
