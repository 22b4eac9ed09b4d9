"""Concurrent batches for the same company and cost key keep the running totals exact."""

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tally.core.instants import format_instant, utcnow
from tally.db.engine import Database
from tally.usage import ingest
from tally.usage.models import UsageEvent
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
