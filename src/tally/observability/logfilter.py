"""Rate limiting of the log lines an attacker (or an outage) can repeat at will.

When the process runs out of file descriptors, asyncio's accept loop logs
"socket.accept() out of system resource" with a traceback on every retry;
uvicorn logs "Invalid HTTP request received." for every malformed request.
Unbounded, these filled 292 MB of log in 70 s (and 2 MB in 3 s in
tests/observability/test_server.py without this filter). This filter lets the first
line of each kind through, then at most one per `interval` seconds, saying
how many were dropped in between, and never with a traceback.
"""

import errno
import logging
import threading
import time

# How the first line of each message that may repeat without bound begins.
# CPython 3.11's accept loop does not stop at the first EMFILE: one readable
# event makes it try `backlog` times, logging and scheduling a retry each
# time; a server stopped within the retry delay then logs each retry's
# failure ("Exception in callback ..._start_serving").
NOISY = (
    "socket.accept() out of system resource",
    "Exception in callback BaseSelectorEventLoop._start_serving",
    "Invalid HTTP request received.",
    "Exceeded concurrency limit.",
)
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _kind(record: logging.LogRecord) -> str | None:
    first_line = str(record.msg).split("\n", 1)[0]
    for beginning in NOISY:
        if first_line.startswith(beginning):
            return beginning
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
        return f"OSError {exc.errno}"
    return None


class RepeatFilter(logging.Filter):
    """At most one line per kind of noisy message every `interval` seconds."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = _kind(record)
        if kind is None:
            return True
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._dropped[kind] = self._dropped.get(kind, 0) + 1
                return False
            self._last[kind] = now
            dropped = self._dropped.pop(kind, 0)
        exc = record.exc_info[1] if record.exc_info else None
        reason = f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
        suffix = f"; {dropped} more like it dropped" if dropped else ""
        record.msg = f"{kind}{reason}{suffix} (at most one such line every {self.interval:g} s)"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True
