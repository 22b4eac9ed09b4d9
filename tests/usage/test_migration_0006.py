"""Migration 0006 writes the units' totals (usage_unit_buckets) of a database's history."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from tally.app import create_app
from tally.db.engine import Database
from tally.db.migrate import alembic_config, upgrade
from tally.settings import Settings
from tally.usage import fold
from tally.usage.verify import find_mismatches
from tests.factories import Api, event
from tests.servers import BACKENDS, fresh_database

NONZERO = (
    "SELECT billing_system, cost_key, granularity, bucket_start, events, minutes, credits,"
    " interviews FROM usage_unit_buckets"
    " WHERE events <> 0 OR minutes <> 0 OR credits <> 0 OR interviews <> 0"
    " ORDER BY billing_system, cost_key, granularity, bucket_start"
)


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_database(request, "mig6") as url:
        yield url


def test_the_units_totals_are_written_from_the_folded_history(fresh_url: str) -> None:
    """History kept before 0006 (the table dropped by downgrading) gets the same
    rows the folds wrote, and what was still unfolded is folded into both later."""
    upgrade(fresh_url)
    database = Database(fresh_url)
    try:
        app = create_app(Settings(database_url=fresh_url, usage_folder=False), database=database)
        with TestClient(app) as client:
            api = Api.bootstrap(client, database)
            minutes, credits = (
                api.company("Minutes Co", "minutes"),
                api.company("Credits Co", "credits"),
            )
            api.rule(costKey="interview_minutes", baseCost=1, effectiveFrom="2020-01-01T00:00:00Z")
            api.ingest(
                event(minutes, "a", occurredAt="2026-01-31T23:30:00Z", minutes=Decimal(2)),
                event(credits, "b", occurredAt="2026-02-01T00:10:00Z", interviewId="i"),
                event(minutes, "c", occurredAt="2026-02-01T09:00:00Z", minutes=Decimal(5)),
            )
            database.write(fold.fold_all)
            folded = database.write(lambda s: s.execute(text(NONZERO)).all())
            api.ingest(event(credits, "d", occurredAt="2026-02-01T00:20:00Z"))
        database.write(lambda s: s.execute(text("DELETE FROM usage_unit_buckets")))
        command.downgrade(alembic_config(fresh_url), "0005")
        upgrade(fresh_url)
        assert database.write(lambda s: s.execute(text(NONZERO)).all()) == folded
        assert len(folded) == 9  # two units' hours, days and months of 2026-01 and 02
        database.write(fold.fold_all)
        with database.transaction(write=False) as session:
            assert find_mismatches(session) == []
    finally:
        database.dispose()
