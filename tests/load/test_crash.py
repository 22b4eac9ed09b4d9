"""kill -9 of the server in the middle of the load: after a restart and a resend of
every batch that got no answer, nothing is lost, nothing doubled, verify is clean."""

from pathlib import Path

from tests.load import server, traffic
from tests.load.conftest import Fixture

THREADS = 4
WRITERS = 4 * THREADS
PER_WRITER = 1  # 16 batches at once; the kill comes after a third is answered
COMPANIES = 4


def test_kill_9_mid_load_then_resend_loses_and_doubles_nothing(
    loaded: Fixture, tmp_path: Path
) -> None:
    running = server.start(loaded.url, tmp_path, worker_threads=str(THREADS))
    companies = traffic.create_companies(running.base_url, loaded.key, COMPANIES)
    batches = traffic.build_batches(companies, WRITERS, PER_WRITER, seed=9)

    def kill_midway(record: traffic.Record) -> None:
        if len(record.answered) >= len(batches) // 3:
            running.kill()

    try:
        record = traffic.run_load(
            running.base_url, loaded.key, batches, WRITERS, on_progress=kill_midway
        )
    finally:
        running.kill()
    assert record.problems == []
    assert record.answered, "the server was killed before any batch was answered"
    assert record.unanswered, "the server was killed after every batch was answered"
    assert record.answered | record.unanswered == set(range(len(batches)))

    again = server.start(loaded.url, tmp_path, worker_threads=str(THREADS))
    try:
        resend = [batches[index] for index in sorted(record.unanswered)]
        replay = traffic.run_load(again.base_url, loaded.key, resend, WRITERS)
        assert replay.problems == []
        assert replay.answered == set(range(len(resend)))
        expected = traffic.expected_totals(batches)
        assert traffic.reported_totals(again.base_url, loaded.key) == expected
        assert traffic.scope_totals(again.base_url, loaded.key) == traffic.summed(expected)
    finally:
        again.stop()
    checked = server.verify(loaded.url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
