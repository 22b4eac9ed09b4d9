"""The unique constraint alone makes one of two racing transactions record a crossing."""

import threading
import time
import uuid

from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.webhooks import repository
from tests.factories import Api


def values(company: str) -> dict:
    return {
        "id": uuid.uuid4(),
        "company_id": uuid.UUID(company),
        "period_start": 0,
        "period_end": 1,
        "threshold": 80,
        "payload": "{}",
        "created_at": utcnow(),
    }


def test_the_second_insert_waits_then_does_nothing(api: Api, db: Database):
    company = api.company()
    results: list[uuid.UUID | None] = []
    with db.transaction(write=True) as first:
        assert repository.insert_crossing(first, values(company)) is not None

        def second() -> None:
            with db.transaction(write=True) as session:
                results.append(repository.insert_crossing(session, values(company)))

        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(0.3)
        assert results == []  # still waiting for the first transaction
    racer.join(timeout=30)
    assert results == [None]
