"""Metrics, request ids, structured request logs, readiness.

For other packages: `observe_lock_wait(seconds)` records a write-lock wait,
`record_ingest_on_commit(session, accepted, duplicates)` counts a stored batch's
events when its transaction commits.
"""

from fastapi import FastAPI

from tally.observability.api import router
from tally.observability.metrics import observe_lock_wait, record_ingest_on_commit
from tally.observability.middleware import Observability


def install(app: FastAPI) -> None:
    """Add /metrics, /readyz and the outermost middleware (call after every other middleware)."""
    app.include_router(router)
    app.add_middleware(Observability)


__all__ = ["install", "observe_lock_wait", "record_ingest_on_commit"]
