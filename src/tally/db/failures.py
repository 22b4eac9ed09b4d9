"""Which database failures mean "try again": the one place that decides.

Two kinds of failure are not bugs of the request:

- a *collision*: two transactions of different companies inserted the same
  platform-wide id (an event or an interview) at once, or PostgreSQL broke a
  deadlock between them. Retrying the whole transaction once then sees the
  other's committed row and gives the answer the SPEC asks for (duplicate,
  409 or 422);
- *unavailability*: a wait ran out (SQLite's busy timeout, PostgreSQL's
  lock_timeout, the connection pool's timeout) or the database could not be
  reached. The transaction was rolled back, so nothing was done, and the
  client gets 503 SERVICE_UNAVAILABLE with Retry-After.

Everything else is a bug and stays a 500.
"""

import sqlite3

from sqlalchemy import exc as sa

from tally.errors import ServiceUnavailable

# SQLSTATEs: unique_violation, deadlock_detected.
_COLLISIONS = frozenset({"23505", "40P01"})
# deadlock_detected (outside Database.write's retry), lock_not_available
# (lock_timeout), query_canceled (statement_timeout), serialization_failure,
# too_many_connections, cannot_connect_now, admin_shutdown, crash_shutdown.
_UNAVAILABLE = frozenset({"40P01", "55P03", "57014", "40001", "53300", "57P03", "57P01", "57P02"})
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def _sqlstate(exc: BaseException) -> str | None:
    original = getattr(exc, "orig", None)
    state = getattr(original, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_collision(exc: BaseException) -> bool:
    """Another transaction's concurrent insert of the same id, or a broken deadlock."""
    return isinstance(exc, sa.DBAPIError) and _sqlstate(exc) in _COLLISIONS


def unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 this failure means, or None when it is not a matter of waiting."""
    if isinstance(exc, sa.TimeoutError):
        return ServiceUnavailable("the database is busy; no connection was free in time")
    if not isinstance(exc, sa.DBAPIError):
        return None
    if exc.connection_invalidated or _sqlstate(exc) in _UNAVAILABLE:
        return ServiceUnavailable("the database is busy or unreachable; nothing was done")
    if isinstance(exc, sa.OperationalError):
        if isinstance(exc.orig, sqlite3.Error):
            text = str(exc.orig).lower()
            if any(marker in text for marker in _SQLITE_BUSY):
                return ServiceUnavailable("the database is busy; nothing was done")
            return None
        # psycopg: no SQLSTATE (the connection failed) or class 08 (connection exception).
        state = _sqlstate(exc)
        if state is None or state.startswith("08"):
            return ServiceUnavailable("the database cannot be reached; nothing was done")
    return None
