"""What every PostgreSQL connection of tally sets up (tally.db.engine)."""

import pytest
from sqlalchemy import text

from tally.db.engine import Database

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_every_execution_is_planned_for_its_own_values(db: Database) -> None:
    # A generic plan of a batch's `id IN (...)` duplicate check scanned the
    # whole event table once psycopg had prepared it (docs/performance.md).
    with db.transaction(write=False) as session:
        assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        assert session.execute(text("SHOW lock_timeout")).scalar() != "0"
