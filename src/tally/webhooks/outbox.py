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
from datetime import datetime
from typing import Protocol

import simplejson
from sqlalchemy.orm import Session

from tally.core.instants import format_instant, to_micros
from tally.core.quantities import from_scaled
from tally.plans import repository as plans
from tally.plans.models import Plan
from tally.plans.periods import Window
from tally.plans.service import thresholds_of, window_of
from tally.plans.standing import reached
from tally.plans.usage import used_by_company
from tally.webhooks import repository
from tally.webhooks.repository import Crossed
from tally.webhooks.schemas import EVENT_TYPE


class NewEvent(Protocol):
    """What the outbox needs of a stored event."""

    @property
    def company_id(self) -> uuid.UUID: ...
    @property
    def occurred_at(self) -> int: ...
    @property
    def is_test(self) -> bool: ...


def record_crossings(session: Session, events: Iterable[NewEvent], now: datetime) -> None:
    """Record the thresholds the batch's new events took their companies to (see module doc)."""
    instants: dict[uuid.UUID, list[int]] = {}
    for event in events:
        if not event.is_test:
            instants.setdefault(event.company_id, []).append(event.occurred_at)
    if not instants:
        return
    groups: dict[Window, list[Plan]] = {}
    for plan in plans.plans_of(session, sorted(instants)):
        window = window_of(plan, now)
        start, end = to_micros(window.start), to_micros(window.end)
        # Only events of the current period can take it over a threshold.
        if any(start <= at < end for at in instants[plan.company_id]):
            groups.setdefault(window, []).append(plan)
    for window, group in groups.items():
        _record_window(session, window, group, now)


def _record_window(session: Session, window: Window, group: list[Plan], now: datetime) -> None:
    facts = repository.company_facts(session, [plan.company_id for plan in group])
    used = used_by_company(
        session, [facts[plan.company_id].company for plan in group], *_span(window)
    )
    done = repository.recorded(session, list(facts), window.start)
    for plan in group:
        for threshold in thresholds_of(plan):
            if (plan.company_id, threshold) in done:
                continue
            if reached(used[plan.company_id], plan.allowance, threshold):
                _record(session, facts[plan.company_id], plan, window, threshold, used, now)


def _span(window: Window) -> tuple[datetime, datetime]:
    # The whole period: an event may lie up to five minutes ahead of now.
    return window.start, window.end


def _record(
    session: Session,
    facts: Crossed,
    plan: Plan,
    window: Window,
    threshold: int,
    used: dict[uuid.UUID, int],
    now: datetime,
) -> None:
    company = facts.company
    payload = {
        "type": EVENT_TYPE,
        "timestamp": format_instant(now.replace(microsecond=0)),
        "data": {
            "companyId": str(company.id),
            "companyName": company.name,
            "unit": "credits" if company.billing_system == "credits" else "minutes",
            "threshold": threshold,
            "allowance": from_scaled(plan.allowance),
            "used": from_scaled(used[company.id]),
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
    endpoints = repository.matching_endpoints(session, company.id, facts.ats_integration_id)
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
