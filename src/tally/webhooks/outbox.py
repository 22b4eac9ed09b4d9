"""The transactional outbox: threshold crossings recorded with the events that caused them.

Ingestion calls record_crossings once, at the end of a batch, in the batch's
own transaction and after its events are written. For each company of the
batch that has a plan and a new counted event in its current period, it
computes `used` over the period and records every threshold reached and not
yet recorded: one crossing row (unique on company, period start and
threshold, inserted with ON CONFLICT DO NOTHING) and one delivery row per
matching endpoint. So a crossing commits or rolls back with its events (a
rejected batch records nothing, a crash loses nothing), a re-sent batch or a
void followed by a new crossing records nothing new, and of eight concurrent
batches crossing the same threshold exactly one inserts the row. The delivery
worker (tally.webhooks.worker) sends what these rows describe, afterwards.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

import simplejson
from sqlalchemy.orm import Session

from tally.core.instants import format_instant, to_micros
from tally.core.quantities import from_scaled
from tally.plans import repository as plans
from tally.plans.periods import Window
from tally.plans.service import thresholds_of, window_of
from tally.plans.standing import reached
from tally.plans.usage import used_by_company
from tally.webhooks import repository
from tally.webhooks.repository import PlannedCompany
from tally.webhooks.schemas import EVENT_TYPE

# Every current period started less than this long ago (a year and a zone's offset).
HORIZON = timedelta(days=400)


class NewEvent(Protocol):
    """What the outbox needs of a stored event."""

    @property
    def company_id(self) -> uuid.UUID: ...
    @property
    def occurred_at(self) -> int: ...
    @property
    def is_test(self) -> bool: ...
    @property
    def minutes(self) -> int: ...
    @property
    def credits(self) -> int | None: ...


# Per company, the batch's counted events: (occurred_at, minutes, credits).
Added = dict[uuid.UUID, list[tuple[int, int, int]]]


def record_crossings(session: Session, events: Iterable[NewEvent], now: datetime) -> None:
    """Record the thresholds the batch's new events took their companies to (see module doc)."""
    added: Added = {}
    for event in events:
        if not event.is_test:
            added.setdefault(event.company_id, []).append(
                (event.occurred_at, event.minutes, event.credits or 0)
            )
    if not added:
        return
    groups: dict[Window, list[PlannedCompany]] = {}
    found, recorded = repository.planned_companies(session, list(added), now - HORIZON)
    for planned in found:
        window = window_of(planned, now)
        start, end = to_micros(window.start), to_micros(window.end)
        # Only events of the current period can take it over a threshold.
        if any(start <= at < end for at, _, _ in added[planned.company_id]):
            groups.setdefault(window, []).append(planned)
    for window, group in groups.items():
        done = {
            (planned.company_id, threshold)
            for planned in group
            for period_start, threshold in recorded[planned.company_id]
            if period_start == window.start
        }
        _record_window(session, window, group, done, added, now)


def _used(
    session: Session, window: Window, group: list[PlannedCompany], added: Added
) -> dict[uuid.UUID, int]:
    """What each company of the group used in the window, this batch included.

    Where plan_usage holds what the outbox counted in this window and unit
    before, that plus the batch's own events in the window (its rows are
    exact: whatever else changes a period's usage deletes them); elsewhere
    the report's answer (running totals and the unfolded tail). Both are
    then remembered for the next batch.
    """
    start, end = _span(window)
    low, high = to_micros(start), to_micros(end)
    used: dict[uuid.UUID, int] = {}
    unknown = []
    for planned in group:
        before = planned.counted(start, end)
        if before is None:
            unknown.append(planned.company)
            continue
        credits = planned.billing_system == "credits"
        used[planned.company_id] = before + sum(
            amount_credits if credits else amount_minutes
            for at, amount_minutes, amount_credits in added[planned.company_id]
            if low <= at < high
        )
    used.update(used_by_company(session, unknown, start, end))
    plans.remember_used(session, start, end, [(p.company, used[p.company_id]) for p in group])
    return used


def _record_window(
    session: Session,
    window: Window,
    group: list[PlannedCompany],
    done: set[tuple[uuid.UUID, int]],
    added: Added,
    now: datetime,
) -> None:
    # A company past every threshold of its plan has nothing left to cross.
    open_plans = [
        planned
        for planned in group
        if any((planned.company_id, t) not in done for t in thresholds_of(planned))
    ]
    if not open_plans:
        return
    used = _used(session, window, open_plans, added)
    for planned in open_plans:
        for threshold in thresholds_of(planned):
            if (planned.company_id, threshold) in done:
                continue
            if reached(used[planned.company_id], planned.allowance, threshold):
                _record(session, planned, window, threshold, used[planned.company_id], now)


def _span(window: Window) -> tuple[datetime, datetime]:
    # The whole period: an event may lie up to five minutes ahead of now.
    return window.start, window.end


def _record(
    session: Session,
    planned: PlannedCompany,
    window: Window,
    threshold: int,
    used: int,
    now: datetime,
) -> None:
    company = planned.company
    payload = {
        "type": EVENT_TYPE,
        "timestamp": format_instant(now.replace(microsecond=0)),
        "data": {
            "companyId": str(company.id),
            "companyName": company.name,
            "unit": "credits" if company.billing_system == "credits" else "minutes",
            "threshold": threshold,
            "allowance": from_scaled(planned.allowance),
            "used": from_scaled(used),
            "periodStart": format_instant(window.start),
            "periodEnd": format_instant(window.end),
        },
    }
    crossing_id = repository.insert_crossing(
        session,
        {
            "id": uuid.uuid4(),
            "company_id": company.id,
            "period_start": window.start,
            "period_end": window.end,
            "threshold": threshold,
            "payload": simplejson.dumps(payload, use_decimal=True, separators=(",", ":")),
            "created_at": now,
        },
    )
    if crossing_id is None:
        return
    endpoints = repository.matching_endpoints(session, company.id, planned.ats_integration_id)
    repository.insert_deliveries(
        session,
        [
            {
                "id": uuid.uuid4(),
                "endpoint_id": endpoint_id,
                "crossing_id": crossing_id,
                "event_type": EVENT_TYPE,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in endpoints
        ],
    )
