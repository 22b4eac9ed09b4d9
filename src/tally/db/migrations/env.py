"""Alembic environment: migrations run online against the configured URL."""

from alembic import context
from sqlalchemy import text

from tally.db.engine import build_engine
from tally.db.models import Base

# Any constant of tally's own: servers started together on a database that needs
# migrating queue here, and each runs only what the one before left to run.
MIGRATION_LOCK = 0x7A11_0001

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = build_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            context.run_migrations()
    engine.dispose()


run_migrations_online()
