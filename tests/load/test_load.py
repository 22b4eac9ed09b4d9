"""More concurrent writers than worker threads, with readers and a /healthz probe,
against a real `tally serve`: no lock-up, bounded waits, exact totals.

Each test is bounded (well under a minute on a 2-core machine): 4 worker
threads, 16 writers of 500-event batches, 2 readers, a probe every 100 ms.
"""

from pathlib import Path

import pytest

from tests.load import server, traffic
from tests.load.conftest import Fixture

THREADS = 4
WRITERS = 4 * THREADS
PER_WRITER = 2
COMPANIES = 4


def _assert_clean(record: traffic.Record) -> None:
    assert record.problems == []
    assert set(record.statuses) <= {200, 503}, dict(record.statuses)
    assert record.slowest <= traffic.REQUEST_TIMEOUT
    assert record.health_probes > 0
    assert record.health_slowest < traffic.HEALTH_LIMIT
    assert record.reads > 0


def _load(fixture: Fixture, tmp_path: Path, *flags: str, per_writer: int = PER_WRITER) -> None:
    running = server.start(fixture.url, tmp_path, *flags, worker_threads=str(THREADS))
    try:
        companies = traffic.create_companies(running.base_url, fixture.key, COMPANIES)
        batches = traffic.build_batches(companies, WRITERS, per_writer, seed=6)
        record = traffic.run_load(running.base_url, fixture.key, batches, WRITERS)
        print(record.summary())  # shown with -s: what the clients saw
        _assert_clean(record)
        assert record.answered == set(range(len(batches)))
        expected = traffic.expected_totals(batches)
        assert traffic.reported_totals(running.base_url, fixture.key) == expected
        assert traffic.scope_totals(running.base_url, fixture.key) == traffic.summed(expected)
    finally:
        running.stop()
    checked = server.verify(fixture.url)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_more_writers_than_threads_all_answered_with_exact_totals(
    loaded: Fixture, tmp_path: Path
) -> None:
    _load(loaded, tmp_path)


@pytest.mark.postgres
@pytest.mark.parametrize("loaded", ["postgresql"], indirect=True)
def test_two_server_processes_share_the_load(loaded: Fixture, tmp_path: Path) -> None:
    # One batch per writer (16 at once): the suite's time budget.
    _load(loaded, tmp_path, "--workers", "2", per_writer=1)
