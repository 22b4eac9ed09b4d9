"""The past bound on occurredAt (TALLY_HISTORY_START, issue 10 item 1): an event before
it is a 422 naming occurredAt, and a late batch at the bound costs a bounded rewrite."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from tally.app import create_app
from tally.core.instants import format_instant
from tally.db.engine import Database
from tally.settings import Settings
from tally.usage import fold
from tally.usage.buckets import DAY, HOUR, MONTH
from tally.usage.models import UsageBucket, UsageEvent
from tests.factories import Api, event

START = datetime(2000, 1, 1, tzinfo=UTC)


def _stored(db: Database) -> int:
    with db.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(UsageEvent)) or 0


def test_an_event_before_the_start_of_history_is_a_422_naming_occurred_at(
    api: Api, db: Database
) -> None:
    company = api.company("Acme", "minutes")
    response = api.events(
        event(company, "ok", occurredAt="2000-01-01T00:00:00Z"),
        event(company, "early", occurredAt="1999-12-31T23:59:59.999999Z"),
        event(company, "offset", occurredAt="2000-01-01T00:30:00+01:00"),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_EVENTS"
    assert error["details"]["errors"] == [
        {
            "index": index,
            "field": "occurredAt",
            "message": "before the start of history (2000-01-01T00:00:00Z)",
        }
        for index in (1, 2)
    ]
    assert _stored(db) == 0


def test_the_start_of_history_is_a_setting(api: Api, db: Database) -> None:
    company = api.company("Acme", "minutes")
    start = datetime(2020, 6, 1, tzinfo=UTC)
    app = create_app(Settings(database_url=db.url, history_start=start), database=db)
    with TestClient(app, raise_server_exceptions=False) as client:
        own = Api(client, api.platform_key)
        assert own.events(event(company, occurredAt="2020-05-31T23:00:00Z")).status_code == 422
        assert own.events(event(company, occurredAt="2020-06-01T00:00:00Z")).status_code == 200
    assert _stored(db) == 1


@contextmanager
def _bucket_rows_written(db: Database) -> Iterator[list[int]]:
    """Counts the usage_buckets rows every UPDATE and INSERT of the block wrote."""
    written = [0]

    def count(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith(("UPDATE usage_buckets", "INSERT INTO usage_buckets")):
            written[0] += max(cursor.rowcount, 0)

    sa_event.listen(db.engine, "after_cursor_execute", count)
    try:
        yield written
    finally:
        sa_event.remove(db.engine, "after_cursor_execute", count)


def test_a_batch_at_the_start_of_history_after_a_long_history_is_bounded(
    api: Api, db: Database
) -> None:
    """Each late bucket shifts only the later rows of its period: at most 23 hour rows,
    30 day rows and the months since the start of history."""
    company = api.company("Acme", "minutes")
    months = 0
    history: list[dict[str, Any]] = []
    at = START
    while at < datetime(2026, 11, 1, tzinfo=UTC):
        history.append(event(company, f"h{months}", occurredAt=format_instant(at)))
        at = (at + timedelta(days=32)).replace(day=1)
        months += 1
    for part in range(0, len(history), 1000):
        api.ingest(*history[part : part + 1000])
    # 1,000 events at the start of history: every hour of its first ~42 days.
    late = [
        event(company, f"late{n}", occurredAt=format_instant(START + timedelta(hours=n)))
        for n in range(1000)
    ]
    hours = set(range(1000))
    days = {n // 24 for n in hours}
    late_months = {(START + timedelta(days=day)).month for day in days}
    bound = len(hours) * (1 + 23) + len(days) * (1 + 30) + len(late_months) * (1 + months)
    # The running totals change when the tail is folded: fold the history
    # first, then count what ingesting and folding the late batch writes.
    db.write(fold.fold_all)
    with _bucket_rows_written(db) as written:
        api.ingest(*late)
        db.write(fold.fold_all)
    assert months <= written[0] <= bound
    with db.transaction(write=False) as session:
        rows = dict(
            session.execute(
                select(UsageBucket.granularity, func.count()).group_by(UsageBucket.granularity)
            ).all()
        )
    assert rows[MONTH] == months
    assert rows[DAY] == months - 2 + len(days)
    assert rows[HOUR] == months - 2 + len(hours)
    total = api.usage(api.platform_key, start="2000-01-01", end="2027-01-01").json()["data"]
    assert total["companies"][0]["breakdownByCostKey"][0]["events"] == months + 1000
