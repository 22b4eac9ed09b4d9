"""Prometheus metrics: what they count, and /metrics in every process model.

Labels are bounded on purpose: routes are the route TEMPLATE
(`/usage/events/{event_id}/void`, never the raw path with its ids), unknown
paths are `unmatched`, methods outside the standard set are `OTHER`, so no
client can grow the number of series.

Under `tally serve --workers N` each worker process keeps its own counters;
prometheus-client's multiprocess mode writes them to files in
PROMETHEUS_MULTIPROC_DIR and /metrics, answered by any worker, sums them.
That variable must be set before `prometheus_client` is first imported in a
worker, which is why `tally serve` sets it (`multiprocess_dir`) before it
starts them. One process without the variable uses the default registry.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# No `_created` series beside each counter: Prometheus does not need them.
disable_created_metrics()  # type: ignore[no-untyped-call]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Latency buckets from 2.5 ms (a cached read) to 30 s (the longest a request may wait).
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LOCK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "tally_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tally_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
OVERLOADED = Counter(
    "tally_http_overloaded",
    "503 SERVICE_UNAVAILABLE answers (overload, or the database not reachable in time).",
    ["route"],
)
RATE_LIMITED = Counter("tally_http_rate_limited", "429 RATE_LIMITED answers.", ["route"])
DISCONNECTS = Counter(
    "tally_http_client_disconnects", "Requests whose client went away before the answer."
)
EVENTS = Counter(
    "tally_events_ingested",
    "Usage events in accepted batches: newly stored (accepted) or already stored (duplicate).",
    ["result"],
)
REJECTED_BATCHES = Counter(
    "tally_event_batches_rejected",
    "POST /usage/events batches refused as a whole (nothing stored), by status.",
    ["status"],
)
LOCK_WAIT = Histogram(
    "tally_lock_wait_seconds",
    "Time spent waiting for a write lock before a writing transaction could proceed.",
    ["lock"],
    buckets=LOCK_BUCKETS,
)

INGEST_ROUTE = "/usage/events"


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request (called once per request by the middleware)."""
    labels = (method_label(method), route, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(seconds)
    if status == 503:
        OVERLOADED.labels(route).inc()
    elif status == 429:
        RATE_LIMITED.labels(route).inc()
    if method == "POST" and route == INGEST_ROUTE and status >= 400 and status not in (401, 403):
        # 429 and 503 included: nothing of the batch was stored either.
        REJECTED_BATCHES.labels(str(status)).inc()


def observe_disconnect() -> None:
    DISCONNECTS.inc()


def record_ingest(accepted: int, duplicates: int) -> None:
    """Count the events of a batch that was stored (call after the result is known)."""
    EVENTS.labels("accepted").inc(accepted)
    EVENTS.labels("duplicate").inc(duplicates)


def record_ingest_on_commit(session: "Session", accepted: int, duplicates: int) -> None:
    """Count a batch's events once its transaction has committed (not if it rolls back)."""
    # Imported here: this module is loaded with the log configuration of
    # worker processes, before they answer their supervisor's pings.
    from sqlalchemy import event

    event.listen(session, "after_commit", lambda _s: record_ingest(accepted, duplicates), once=True)


def observe_lock_wait(seconds: float, lock: str = "write") -> None:
    """Record how long a transaction waited for a write lock.

    For the locking code: call it once per acquisition with the time from
    asking for the lock to holding it (also when the wait ended in a 503, with
    the time waited). `lock` names the kind of lock (a bounded set such as
    "write" or "company"; never an id).
    """
    LOCK_WAIT.labels(lock).observe(seconds)


def render() -> tuple[bytes, str]:
    """The metrics of every process serving this app, in the text format."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@contextmanager
def multiprocess_dir(workers: int) -> Iterator[None]:
    """For several worker processes, a PROMETHEUS_MULTIPROC_DIR unless one is set.

    The directory is created empty (counters start from zero with the server)
    and removed when the server stops. A directory set by the operator is left
    alone: they own its lifecycle (it must be emptied between runs).
    """
    if workers == 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="tally-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
