"""A many-row CSV is produced chunk by chunk: memory does not grow with the rows."""

import tracemalloc
from datetime import UTC, datetime, timedelta

from tally.companies.repository import all_company_refs
from tally.core.instants import format_instant, utcnow
from tally.db.engine import Database
from tally.reporting.csv_export import csv_lines
from tally.reporting.series import plan
from tally.usage import fold, ingest
from tests.factories import Api

COMPANIES = 10
HOURS = 1000
START = datetime(2026, 1, 1, tzinfo=UTC)
# Companies x buckets held at once: 20 buckets of 10 companies.
BUDGET = 200


def _fill(api: Api, db: Database) -> None:
    ids = [api.company(f"Company {n:02d}", "minutes") for n in range(COMPANIES)]
    events = [
        {
            "id": f"e{hour}-{index}",
            "companyId": company,
            "costKey": "interview_minutes",
            "occurredAt": format_instant(START + timedelta(hours=hour, minutes=7)),
            "minutes": hour % 90,
        }
        for hour in range(HOURS)
        for index, company in enumerate(ids)
    ]
    for low in range(0, len(events), 1000):
        with db.transaction(write=True) as session:
            ingest.ingest(session, {"events": events[low : low + 1000]}, utcnow())
    # Folded now, so the app's folder allocates nothing (in its own thread,
    # but traced all the same) while the CSV is measured.
    db.write(fold.fold_all)


def _consume(db: Database, hours: int) -> tuple[int, int, int]:
    """(rows, characters, peak bytes allocated) of the hourly CSV over the first `hours`."""
    request = plan(START, START + timedelta(hours=hours), "hour", None)
    rows = characters = 0
    with db.transaction(write=False) as session:
        companies = all_company_refs(session)
        tracemalloc.start()
        try:
            for line in csv_lines(session, companies, request, cell_budget=BUDGET):
                rows += 1
                characters += len(line)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return rows - 1, characters, peak


def test_peak_memory_is_flat_in_the_number_of_rows(api: Api, db: Database) -> None:
    _fill(api, db)
    small_rows, _, small_peak = _consume(db, 100)
    rows, characters, peak = _consume(db, HOURS)
    assert small_rows == 100 * COMPANIES
    assert rows == HOURS * COMPANIES
    # Ten times the rows, about the same peak; and far below the text it produced.
    assert peak < 2 * small_peak + 256 * 1024, (small_peak, peak)
    assert peak < characters / 3, (peak, characters)
