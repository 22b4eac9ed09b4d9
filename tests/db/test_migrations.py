"""The Alembic migrations build exactly the schema the models describe."""

import os
import subprocess
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tally.db.engine import Database
from tally.db.models import Base
from tests.servers import TALLY, fresh_postgres_database


def test_models_and_migrations_agree(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_sqlite_runs_in_wal_with_foreign_keys(db: Database) -> None:
    if not db.is_sqlite:
        assert inspect(db.engine).get_table_names()
        return
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_concurrent_migrations_all_succeed(postgresql_url: str, tmp_path: Path) -> None:
    """Servers started at once on a new PostgreSQL database each migrate it:
    the advisory lock makes them take turns instead of racing on CREATE TABLE."""
    with fresh_postgres_database(postgresql_url, "tally_migrate_race_") as url:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        processes = [
            subprocess.Popen(  # noqa: S603 - our own console script
                [str(TALLY), "migrate", "--database-url", url],
                env=environment,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        errors = [process.communicate(timeout=120)[1] for process in processes]
        failures = [
            error for process, error in zip(processes, errors, strict=True) if process.returncode
        ]
        assert failures == []
        database = Database(url)
        try:
            with database.engine.connect() as connection:
                context = MigrationContext.configure(connection)
                assert context.get_current_revision() is not None
        finally:
            database.dispose()
