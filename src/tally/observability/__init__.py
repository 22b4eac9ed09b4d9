"""Metrics, request ids, structured request logs, readiness.

For other packages: `tally.observability.metrics.observe_lock_wait(seconds)`
records a write-lock wait, `record_ingest_on_commit(session, accepted,
duplicates)` counts a stored batch's events when its transaction commits;
`tally.observability.api.install(app)` adds the routes and the middleware.

Kept free of imports on purpose: uvicorn's worker processes configure
logging (this package's formatter and filter) before they answer their
supervisor's health pings, and a worker that imports the web stack first is
killed as unresponsive on a loaded machine.
"""
