"""The straightforward query a user would write, over the raw events only.

One statement: the counted events of the window grouped by company and cost
key, and the interviews whose first counted event (over all of history)
lies in the window. Same semantics as GET /billing/usage, no aggregates.
Its answers are also compared with tally's, window by window.
"""

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.queries import Window, report_in_process
from tally.auth.principal import Principal
from tally.auth.tenancy import visible_companies
from tally.core.instants import to_micros
from tally.core.quantities import from_scaled
from tally.db.driver import Driver
from tally.db.engine import Database

NAIVE_SQL = """
SELECT company_id, cost_key, COUNT(*), SUM(minutes), SUM(COALESCE(credits, 0)), 0
FROM usage_events
WHERE company_id IN ({ids}) AND occurred_at >= {m} AND occurred_at < {m}
  AND is_test = FALSE AND voided_at IS NULL
GROUP BY company_id, cost_key
UNION ALL
SELECT company_id, NULL, 0, 0, 0, COUNT(*)
FROM (
  SELECT company_id, MIN(occurred_at) AS first_at
  FROM usage_events
  WHERE company_id IN ({ids}) AND interview_id IS NOT NULL
    AND is_test = FALSE AND voided_at IS NULL
  GROUP BY company_id, interview_id
) AS firsts
WHERE first_at >= {m} AND first_at < {m}
GROUP BY company_id
"""


@dataclass
class NaiveCompany:
    interviews: int = 0
    by_cost_key: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def naive_report(database: Database, caller: Principal, window: Window) -> dict[str, NaiveCompany]:
    """Per company id (as text): interviews and (events, minutes, credits) per cost key."""
    start, end = to_micros(window[0]), to_micros(window[1])
    with database.transaction(write=False) as session:
        companies = visible_companies(session, caller, None)
        driver = Driver(session)
        keys = [driver.uuid(company.id) for company in companies]
        marks = ", ".join([driver.mark] * len(keys))
        statement = NAIVE_SQL.format(ids=marks, m=driver.mark)
        params = (*keys, start, end, *keys, start, end)
        rows = session.connection().exec_driver_sql(statement, params).all()
    result = {str(company.id): NaiveCompany() for company in companies}
    for company_id, cost_key, events, minutes, credits, interviews in rows:
        entry = result[str(uuid.UUID(hex=str(company_id)))]
        if cost_key is None:
            entry.interviews += int(interviews)
        else:
            entry.by_cost_key[cost_key] = (int(events), int(minutes), int(credits))
    return result


def naive_series(
    database: Database, caller: Principal, items: Sequence[Window]
) -> tuple[list[float], list[dict[str, NaiveCompany]]]:
    """Seconds and answer per window; one warm-up query first, not counted."""
    naive_report(database, caller, items[0])
    timings, answers = [], []
    for window in items:
        began = time.perf_counter()
        answers.append(naive_report(database, caller, window))
        timings.append(time.perf_counter() - began)
    return timings, answers


def _tally_view(entry: dict[str, Any]) -> tuple[int, dict[str, tuple[int, Decimal]]]:
    unit = "minutesUsed" if entry["billingSystem"] == "minutes" else "creditsUsed"
    return entry["totalInterviews"], {
        item["costKey"]: (item["events"], Decimal(item[unit]))
        for item in entry["breakdownByCostKey"]
    }


def _naive_view(entry: NaiveCompany, billing: str) -> tuple[int, dict[str, tuple[int, Decimal]]]:
    index = 1 if billing == "minutes" else 2
    return entry.interviews, {
        key: (sums[0], from_scaled(sums[index]))
        for key, sums in entry.by_cost_key.items()
        if sums[0]
    }


def disagreements(
    database: Database,
    caller: Principal,
    items: Sequence[Window],
    answers: Sequence[dict[str, NaiveCompany]],
) -> int:
    """Windows where tally's answer differs from the naive one (should be 0)."""
    differing = 0
    for window, naive in zip(items, answers, strict=True):
        tally = json.loads(report_in_process(database, caller, window), parse_float=Decimal)
        for entry in tally["companies"]:
            mine = naive[entry["companyId"]]
            if _tally_view(entry) != _naive_view(mine, entry["billingSystem"]):
                differing += 1
                break
    return differing
