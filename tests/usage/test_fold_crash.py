"""kill -9 of a real server while the tail holds unfolded changes loses nothing."""

import time
from pathlib import Path

from sqlalchemy import func, select

from tally.db.engine import Database
from tally.usage.models import UsageDelta
from tests.load import server, traffic
from tests.load.conftest import Fixture, loaded  # noqa: F401 - the fixture
from tests.servers import KILL_TIMEOUT

WRITERS = 4
PER_WRITER = 2
COMPANIES = 3


def _tail(url: str) -> int:
    database = Database(url)
    try:
        with database.transaction(write=False) as session:
            return int(session.execute(select(func.count()).select_from(UsageDelta)).scalar_one())
    finally:
        database.dispose()


def test_kill_9_with_an_unfolded_tail_loses_nothing(
    loaded: Fixture,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    # No fold while the first server lives: every change stays in the tail.
    running = server.start(
        loaded.url, tmp_path, usage_fold_rows="1000000", usage_fold_seconds="3600"
    )
    try:
        companies = traffic.create_companies(running.base_url, loaded.key, COMPANIES)
        batches = traffic.build_batches(companies, WRITERS, PER_WRITER, seed=11)
        record = traffic.run_load(running.base_url, loaded.key, batches, WRITERS)
        assert record.problems == []
        assert record.answered == set(range(len(batches)))
        expected = traffic.expected_totals(batches)
        assert traffic.reported_totals(running.base_url, loaded.key) == expected
        assert _tail(loaded.url) > 0
    finally:
        running.kill()
    assert running.process.wait(timeout=KILL_TIMEOUT) == -9
    assert _tail(loaded.url) > 0, "the tail was folded before the kill"

    # A fresh server answers from totals plus tail, then folds the tail away.
    again = server.start(loaded.url, tmp_path, usage_fold_rows="1", usage_fold_seconds="0.1")
    try:
        assert traffic.reported_totals(again.base_url, loaded.key) == expected
        deadline = time.monotonic() + 20
        while _tail(loaded.url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _tail(loaded.url) == 0
        assert traffic.reported_totals(again.base_url, loaded.key) == expected
    finally:
        again.stop()
    checked = server.verify(loaded.url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
