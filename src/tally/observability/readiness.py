"""Readiness: the database answers, within a bound, at the schema this code expects."""

import logging
from functools import lru_cache

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tally.db.engine import Database
from tally.db.migrate import alembic_config

log = logging.getLogger("tally.readiness")


@lru_cache
def schema_heads(url: str) -> frozenset[str]:
    """The revisions the installed migrations end at (read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def problem(database: Database) -> str | None:
    """Why the service is not ready, in words safe to show; None when it is.

    Runs in a worker thread; the caller bounds the wait. Exception messages
    stay out of the answer and the log (they can carry connection details).
    """
    try:
        with database.transaction(write=False) as session:
            current = frozenset(
                session.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
    except SQLAlchemyError as exc:
        log.warning("not ready: database error %s", type(exc).__name__)
        return "the database cannot be reached or has no schema"
    if current != schema_heads(database.url):
        log.warning(
            "not ready: schema %s, expected %s", sorted(current), sorted(schema_heads(database.url))
        )
        return "the database schema is not at the latest migration; run tally migrate"
    return None
