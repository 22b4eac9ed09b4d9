"""What every PostgreSQL connection of tally sets up (tally.db.engine)."""

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from tally.db.driver import Driver
from tally.db.engine import Database

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_every_execution_is_planned_for_its_own_values(db: Database) -> None:
    # A generic plan of a batch's `id IN (...)` duplicate check scanned the
    # whole event table once psycopg had prepared it (docs/performance.md).
    with db.transaction(write=False) as session:
        assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        assert session.execute(text("SHOW lock_timeout")).scalar() != "0"


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_bulk_insert_reuses_its_plan_and_leaves_the_setting_as_it_was(db: Database) -> None:
    def work(session: Session) -> tuple[str, str]:
        driver = Driver(session)
        seen: list[str] = []

        def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.startswith("INSERT"):
                seen.append(conn.exec_driver_sql("SHOW plan_cache_mode").scalar())

        event.listen(session.connection(), "before_cursor_execute", watch)
        session.execute(text("CREATE TEMP TABLE many (n BIGINT)"))
        driver.executemany(driver.insert("many", ("n",)), [(n,) for n in range(20)])
        after = session.execute(text("SHOW plan_cache_mode")).scalar_one()
        event.remove(session.connection(), "before_cursor_execute", watch)
        assert session.execute(text("SELECT COUNT(*) FROM many")).scalar_one() == 20
        return seen[0], after

    during, after = db.write(work)
    assert (during, after) == ("auto", "force_custom_plan")
