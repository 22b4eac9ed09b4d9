"""Metrics, request ids, structured request logs, readiness.

For other packages: `observe_lock_wait(seconds)` records a write-lock wait,
`record_ingest_on_commit(session, accepted, duplicates)` counts a stored
batch's events when its transaction commits; `tally.observability.api.install(app)`
adds the routes and the middleware.

Only the metrics are imported here, not the web stack: uvicorn's worker
processes load this package's log formatter and filter before they answer
their supervisor's health pings.
"""

from tally.observability.metrics import observe_lock_wait, record_ingest_on_commit

__all__ = ["observe_lock_wait", "record_ingest_on_commit"]
