"""The repeat filter: one noisy line per interval, the rest dropped and counted."""

import errno
import logging

import pytest

from tally.observability.logfilter import RepeatFilter


def _accept_error() -> logging.LogRecord:
    exc = OSError(errno.EMFILE, "Too many open files")
    return logging.LogRecord(
        "asyncio",
        logging.ERROR,
        __file__,
        1,
        "socket.accept() out of system resource\nsocket: <socket fd=7>",
        None,
        (OSError, exc, None),
    )


def test_only_the_first_of_a_burst_passes_without_traceback() -> None:
    noisy = RepeatFilter(interval=60)
    passed = [record for record in (_accept_error() for _ in range(1000)) if noisy.filter(record)]
    assert len(passed) == 1
    assert passed[0].exc_info is None
    assert "Too many open files" in passed[0].getMessage()
    assert "\n" not in passed[0].getMessage()


def test_after_the_interval_one_more_passes_with_the_dropped_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("tally.observability.logfilter.time.monotonic", lambda: now[0])
    noisy = RepeatFilter(interval=10)
    results = []
    for _ in range(25):
        results.append(noisy.filter(_accept_error()))
        now[0] += 1
    assert results.count(True) == 3  # at t=0, 10 and 20
    record = _accept_error()
    now[0] = 1030.0
    assert noisy.filter(record)
    assert "4 more like it dropped" in record.getMessage()


def test_other_records_always_pass() -> None:
    noisy = RepeatFilter(interval=60)
    records = [
        logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", None, None)
        for _ in range(50)
    ]
    assert all(noisy.filter(record) for record in records)


def test_kinds_are_limited_separately() -> None:
    noisy = RepeatFilter(interval=60)
    invalid = logging.LogRecord(
        "uvicorn.error", logging.WARNING, __file__, 1, "Invalid HTTP request received.", None, None
    )
    assert noisy.filter(_accept_error())
    assert noisy.filter(invalid)
    assert not noisy.filter(_accept_error())


def test_retries_failing_at_shutdown_are_limited_too() -> None:
    noisy = RepeatFilter(interval=60)
    message = "Exception in callback BaseSelectorEventLoop._start_serving(<function>)\nhandle: x"
    records = [
        logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)
        for _ in range(2048)
    ]
    assert sum(noisy.filter(record) for record in records) == 1
