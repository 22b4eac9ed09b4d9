"""`tally verify [--repair]`: aggregates recomputed from the raw events."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tally.cli import app
from tally.db.engine import Database
from tally.usage import fold
from tally.usage.verify import find_mismatches, repair
from tests.factories import Api, event

WINDOWS = (
    {"start": "1969-01-01", "end": "2027-01-01"},
    {"start": "2026-01-01", "end": "2026-02-01"},
    {"start": "2026-02-10T09:30:00Z", "end": "2026-03-15T10:15:00Z"},
    {"start": "2026-02-10T10:00:00Z", "end": "2026-02-10T11:00:00Z"},
)


@pytest.fixture
def world(api: Api, db: Database) -> dict[str, str]:
    """Two companies, interviews over hours, days and months, a test event, voids;
    everything folded into the running totals (the tests corrupt those)."""
    built = _world(api)
    db.write(fold.fold_all)
    return built


def _world(api: Api) -> dict[str, str]:
    acme = api.company("Acme Corp", "minutes")
    globex = api.company("Globex", "credits")
    since = "2000-01-01T01:00:00Z"
    api.rule(
        costKey="interview_minutes", baseCost=1, costPerMinute=Decimal("0.5"), effectiveFrom=since
    )
    api.rule(costKey="sourcing_enrichment", baseCost=1, effectiveFrom=since)
    at = {"a": "2026-01-31T23:59:59.999999Z", "b": "2026-02-10T10:00:00Z"}
    api.ingest(
        event(acme, "e1", interviewId="i1", occurredAt=at["a"], minutes=Decimal("12.5")),
        event(acme, "e2", interviewId="i1", occurredAt=at["b"], minutes=3),
        event(acme, "e3", interviewId="i2", occurredAt="2026-02-10T10:30:00Z"),
        event(acme, "e4", interviewId="i3", isTest=True),
        event(acme, "e5", occurredAt="2000-01-01T00:30:00Z", minutes=Decimal("0.000001")),
        event(globex, "g1", interviewId="j1", occurredAt="2026-03-15T10:10:00-02:00"),
        event(globex, "g2", interviewId="j1", costKey="sourcing_enrichment"),
        event(globex, "g3", occurredAt="2026-02-11T08:00:00Z", costKey="sourcing_enrichment"),
    )
    # A late event becomes i2's first; voiding e1 moves i1 to e2; g3 leaves zero rows.
    api.ingest(event(acme, "e6", interviewId="i2", occurredAt="2025-12-01T00:00:00Z"))
    for voided in ("e1", "g3"):
        assert api.void(voided).status_code == 200
    return {"acme": acme, "globex": globex}


def _answers(api: Api) -> list[Any]:
    return [api.usage(**window).json()["data"] for window in WINDOWS]


def _verify(db: Database, *flags: str) -> Any:
    return CliRunner().invoke(app, ["verify", "--database-url", db.url, *flags])


def _corrupt(db: Database, acme: str) -> None:
    """One wrong day, one missing month, one stray hour and one wrong interview."""
    company = acme.replace("-", "") if db.is_sqlite else acme
    with db.transaction(write=True) as session:
        session.execute(
            text(
                "UPDATE usage_buckets SET events = events + 5, minutes = 7000000 "
                "WHERE granularity = 1 AND bucket_start = :day AND company_id = :company "
                "AND cost_key = 'interview_minutes'"
            ),
            {"day": 1770681600000000, "company": company},  # 2026-02-10
        )
        session.execute(
            text(
                "DELETE FROM usage_buckets "
                "WHERE granularity = 2 AND bucket_start = :month AND company_id = :company"
            ),
            {"month": 1764547200000000, "company": company},  # 2025-12
        )
        session.execute(
            text(
                "INSERT INTO usage_buckets (company_id, cost_key, granularity, bucket_start,"
                " events, minutes, credits, interviews)"
                " VALUES (:company, 'stray', 0, :hour, 1, 0, 0, 0)"
            ),
            {"company": company, "hour": 1767225600000000},  # 2026-01-01T00:00Z
        )
        session.execute(
            text(
                "UPDATE interviews SET first_event_id = 'e3', first_counted_at = :at "
                "WHERE id = 'i2'"
            ),
            {"at": 1770719400000000},  # e3's instant, 2026-02-10T10:30Z
        )


def test_traffic_through_the_api_leaves_no_mismatch(
    api: Api, db: Database, world: dict[str, str]
) -> None:
    with db.transaction(write=False) as session:
        assert find_mismatches(session) == []
    result = _verify(db)
    assert result.exit_code == 0, result.output
    assert "every aggregate matches" in result.stdout


def test_corruption_is_reported_then_repaired(
    api: Api, db: Database, world: dict[str, str]
) -> None:
    before = _answers(api)
    _corrupt(db, world["acme"])
    assert _answers(api) != before
    with db.transaction(write=False) as session:
        found = find_mismatches(session)
    acme = world["acme"]
    assert [(m.table, m.key) for m in found] == [
        ("interviews", "interview i2"),
        ("usage_buckets", f"company {acme} interview_minutes day 2026-02-10"),
        ("usage_buckets", f"company {acme} interview_minutes month 2025-12"),
        ("usage_buckets", f"company {acme} stray hour 2026-01-01T00:00:00Z"),
    ]
    assert found[0].stored.endswith("first e3 at 2026-02-10T10:30:00Z (interview_minutes)")
    assert found[0].expected.endswith("first e6 at 2025-12-01T00:00:00Z (interview_minutes)")
    assert found[1].stored == "events=7 minutes=7 credits=8.5 interviews=1"
    assert found[1].expected == "events=2 minutes=13 credits=8.5 interviews=1"
    # Months hold running totals since the beginning: e5 (2000, unpriced) and e6.
    assert found[2].stored == "absent"
    assert found[2].expected == "events=2 minutes=10.000001 credits=6 interviews=1"
    assert found[3].expected == "absent"

    result = _verify(db)
    assert result.exit_code == 1
    assert "4 mismatch(es)" in result.stdout
    result = _verify(db, "--repair")
    assert result.exit_code == 1
    assert "repaired 4" in result.stdout
    assert _verify(db).exit_code == 0
    assert _answers(api) == before


def test_repair_counts_rows_and_is_idempotent(
    api: Api, db: Database, world: dict[str, str]
) -> None:
    _corrupt(db, world["acme"])
    with db.transaction(write=True) as session:
        assert repair(session) == 4
    with db.transaction(write=True) as session:
        assert repair(session) == 0
        assert find_mismatches(session) == []


def test_wiped_aggregates_are_rebuilt(api: Api, db: Database, world: dict[str, str]) -> None:
    before = _answers(api)
    with db.transaction(write=True) as session:
        session.execute(text("DELETE FROM usage_buckets"))
        session.execute(text("DELETE FROM interviews"))
        session.execute(text("DELETE FROM usage_pairs"))
    result = _verify(db, "--repair")
    assert result.exit_code == 1
    assert _verify(db).exit_code == 0
    assert _answers(api) == before


def test_a_missing_pair_is_reported_and_restored(
    api: Api, db: Database, world: dict[str, str]
) -> None:
    before = _answers(api)
    with db.transaction(write=True) as session:
        session.execute(text("DELETE FROM usage_pairs WHERE cost_key = 'sourcing_enrichment'"))
    assert _answers(api) != before
    with db.transaction(write=False) as session:
        found = find_mismatches(session)
    assert [(m.table, m.key, m.stored, m.expected) for m in found] == [
        ("usage_pairs", f"company {world['globex']} sourcing_enrichment", "absent", "present")
    ]
    with db.transaction(write=True) as session:
        assert repair(session) == 1
    assert _answers(api) == before


def _random_events(rng: random.Random, companies: list[str], start: int) -> list[dict[str, Any]]:
    """Events in random order across months and in 2000; interviews keep one owner."""
    base = datetime(2026, 3, 1, tzinfo=UTC)
    found = []
    for serial in range(start, start + 40):
        owner, is_test = rng.randrange(len(companies)), rng.random() < 0.1
        around = base if rng.random() < 0.9 else datetime(2000, 8, 1, tzinfo=UTC)
        at = around + timedelta(minutes=rng.randrange(-60 * 24 * 200, 60 * 24 * 20))
        fields: dict[str, Any] = {
            "costKey": rng.choice(["interview_minutes", "sourcing_enrichment"]),
            "occurredAt": at.isoformat(),
            "minutes": Decimal(rng.randrange(0, 5000)) / 100,
            "isTest": is_test,
        }
        if rng.random() < 0.8:
            fields["interviewId"] = f"iv-{owner}-{is_test}-{rng.randrange(15)}"
        found.append(event(companies[owner], f"r{serial}", **fields))
    return found


def test_random_traffic_verifies_clean_and_rebuilds_to_the_same_answers(
    api: Api, db: Database
) -> None:
    rng = random.Random(20261127)
    companies = [api.company("Minutes Co", "minutes"), api.company("Credits Co", "credits")]
    api.rule(
        costKey="interview_minutes",
        baseCost=2,
        costPerMinute=Decimal("0.25"),
        effectiveFrom="1960-01-01T00:00:00Z",
    )
    api.rule(costKey="sourcing_enrichment", baseCost=1, effectiveFrom="1960-01-01T00:00:00Z")
    for batch in range(5):
        api.ingest(*_random_events(rng, companies, batch * 40))
        for serial in rng.sample(range(batch * 40 + 40), 6):
            assert api.void(f"r{serial}").status_code == 200
    windows = [
        {"start": "1960-01-01", "end": "2027-01-01"},
        {"start": "2000-07-31T22:30:00Z", "end": "2000-08-02T01:00:00Z"},
        {"start": "2025-10-15T10:20:00Z", "end": "2026-02-03T07:00:00Z"},
        {"start": "2026-02-01", "end": "2026-03-01"},
    ]
    before = [api.usage(**window).json()["data"] for window in windows]
    with db.transaction(write=False) as session:
        assert find_mismatches(session) == []
    with db.transaction(write=True) as session:
        for table in ("usage_buckets", "interviews", "usage_pairs"):
            session.execute(text(f"DELETE FROM {table}"))
        assert repair(session) > 0
    assert [api.usage(**window).json()["data"] for window in windows] == before


def _platform_series(api: Api) -> Any:
    """The platform's chart: its top-level buckets come from the units' totals."""
    params = {"start": "2026-02-08", "end": "2026-02-13"}
    response = api.get("/billing/usage/series", **params, companySeries="none")
    assert response.status_code == 200, response.text
    return response.json()["data"]["buckets"]


def test_units_totals_are_checked_and_rebuilt(
    api: Api, db: Database, world: dict[str, str]
) -> None:
    before = _platform_series(api)
    with db.transaction(write=True) as session:
        session.execute(
            text(
                "UPDATE usage_unit_buckets SET minutes = minutes + 3000000"
                " WHERE billing_system = 'minutes'"
                " AND granularity = 1 AND bucket_start = :day"
            ),
            {"day": 1770681600000000},  # 2026-02-10
        )
    assert _platform_series(api) != before
    with db.transaction(write=False) as session:
        found = find_mismatches(session)
    # Compared as changes per bucket: the corrupt day's.
    assert [(m.table, m.key) for m in found] == [
        ("usage_unit_buckets", "minutes interview_minutes day 2026-02-10"),
    ]
    assert found[0].stored == "change events=2 minutes=16 credits=8.5 interviews=1"
    assert found[0].expected == "change events=2 minutes=13 credits=8.5 interviews=1"
    with db.transaction(write=True) as session:
        assert repair(session) == 1
        assert find_mismatches(session) == []
    assert _platform_series(api) == before


def test_a_company_changing_billing_system_takes_its_history_along(
    api: Api, db: Database, world: dict[str, str]
) -> None:
    """Its folded history moves between the units' totals in the PATCH; its
    unfolded changes are counted under the new unit when folded."""
    api.ingest(event(world["acme"], "late", occurredAt="2026-02-10T11:00:00Z", minutes=4))
    before = _platform_series(api)
    response = api.client.patch(
        f"/admin/companies/{world['acme']}",
        json={"billingSystem": "credits"},
        headers=api.auth(api.platform_key),
    )
    assert response.status_code == 200, response.text
    after = _platform_series(api)
    # 2026-02-10: Acme's e2, e3 and the late event (3 + 10 + 4 minutes), Globex's g2.
    assert (before[2]["totalMinutesUsed"], before[2]["totalCreditsUsed"]) == (17, 1)
    # No company is billed in minutes any more; Acme's credits are 2.5 + 6 + 3.
    assert "totalMinutesUsed" not in after[2]
    assert after[2]["totalCreditsUsed"] == 12.5
    db.write(fold.fold_all)
    assert _platform_series(api) == after
    with db.transaction(write=False) as session:
        assert find_mismatches(session) == []
    rows = db.write(
        lambda session: session.execute(
            text(
                "SELECT COUNT(*) FROM usage_unit_buckets WHERE billing_system = 'minutes'"
                " AND (events <> 0 OR minutes <> 0 OR credits <> 0 OR interviews <> 0)"
            )
        ).scalar_one()
    )
    assert rows == 0
