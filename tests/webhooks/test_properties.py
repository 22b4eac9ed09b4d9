"""The outbox against a plain-Python reference, on random histories (Hypothesis).

A history is a sequence of batches (events in the current period, in the
previous one, test events, re-sent batches) and voids. The reference keeps
the stored events and, after every batch with a new counted event in the
current period, marks each threshold that the period's usage has reached.
The crossings tally records must be exactly those thresholds, each once,
with one delivery per endpoint.
"""

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tally.companies import service as companies
from tally.companies.schemas import CompanyIn
from tally.core.instants import format_instant, utcnow
from tally.core.quantities import to_scaled
from tally.db.engine import Database
from tally.plans import service as plans
from tally.plans.models import PlanUsage
from tally.plans.periods import current_window
from tally.plans.schemas import PlanIn
from tally.usage import ingest
from tally.webhooks import service as webhooks
from tally.webhooks.models import ThresholdCrossing, WebhookDelivery
from tally.webhooks.schemas import EndpointIn
from tests.conftest import wipe

THRESHOLDS = [25, 50, 80, 100, 150]
ALLOWANCE = Decimal(100)
SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

minutes = st.integers(0, 4000).map(lambda hundredths: Decimal(hundredths) / 100)
# (kind, minutes, where in the elapsed part of the period, in millionths of it)
new_event = st.tuples(
    st.sampled_from(["current", "current", "past", "test"]), minutes, st.integers(0, 999_999)
)
operation = st.one_of(
    st.tuples(st.just("batch"), st.lists(new_event, min_size=1, max_size=4)),
    st.tuples(st.just("resend"), st.integers(0, 50)),
    st.tuples(st.just("void"), st.integers(0, 50)),
    st.tuples(st.just("replan"), st.just(0)),
)


class Reference:
    """Stored events and the thresholds that must have fired."""

    def __init__(self) -> None:
        self.events: dict[str, tuple[str, Decimal]] = {}
        self.voided: set[str] = set()
        self.fired: set[int] = set()

    def used(self) -> Decimal:
        return sum(
            (
                amount
                for event_id, (kind, amount) in self.events.items()
                if kind == "current" and event_id not in self.voided
            ),
            Decimal(0),
        )

    def batch(self, events: list[tuple[str, str, Decimal]]) -> None:
        new = [
            (event_id, kind, amount)
            for event_id, kind, amount in events
            if event_id not in self.events
        ]
        for event_id, kind, amount in new:
            self.events[event_id] = (kind, amount)
        if any(kind == "current" for _, kind, _ in new):
            used = self.used()
            self.fired |= {t for t in THRESHOLDS if used * 100 >= t * ALLOWANCE}


def _setup(db: Database) -> tuple[str, Any]:
    wipe(db)
    now = utcnow()
    with db.transaction(write=True) as session:
        company = companies.create_company(
            session, CompanyIn.model_validate({"name": "Globex", "billingSystem": "minutes"}), now
        )
        body = PlanIn.parse({"allowance": ALLOWANCE, "period": "month", "thresholds": THRESHOLDS})
        plans.put_plan(session, company.id, body, now)
        for filters in ({}, {"companyId": str(company.id)}):
            endpoint = EndpointIn.model_validate({"url": "https://8.8.8.8/hooks"} | filters)
            webhooks.create_endpoint(session, endpoint, allow_private=False, now=now)
    return str(company.id), now


def _remembered_is_exact(db: Database, window: Any, reference: Reference) -> None:
    """What the outbox remembered of the period (plan_usage) is the period's usage."""
    with db.transaction(write=False) as session:
        row = session.scalars(select(PlanUsage)).one_or_none()
    if row is not None and (row.period_start, row.period_end) == (window.start, window.end):
        assert row.used == to_scaled(reference.used())


@settings(max_examples=20, deadline=None, suppress_health_check=SLOW, phases=PHASES)
@given(history=st.lists(operation, min_size=1, max_size=10))
def test_crossings_are_exactly_the_reference(db: Database, history):
    company, now = _setup(db)
    window = current_window("month", 1, 1, "UTC", now)
    elapsed = int((now - window.start) / timedelta(microseconds=1))
    reference = Reference()
    sent: list[list[dict[str, Any]]] = []
    counter = 0
    for kind, argument in history:
        if kind == "replan":
            # The same plan put again: what the outbox counted is counted anew.
            with db.transaction(write=True) as session:
                body = PlanIn.parse(
                    {"allowance": ALLOWANCE, "period": "month", "thresholds": THRESHOLDS}
                )
                plans.put_plan(session, uuid.UUID(company), body, now)
            continue
        if kind == "void":
            if not reference.events:
                continue
            event_id = sorted(reference.events)[argument % len(reference.events)]
            with db.transaction(write=True) as session:
                ingest.void(session, event_id, now)
            reference.voided.add(event_id)
            continue
        if kind == "resend":
            if not sent:
                continue
            body = sent[argument % len(sent)]
        else:
            body = []
            for event_kind, amount, share in argument:
                counter += 1
                offset = elapsed * share // 1_000_000
                at = window.start + timedelta(microseconds=offset)
                if event_kind == "past":
                    at = window.start - timedelta(microseconds=offset + 1)
                body.append(
                    {
                        "id": f"e{counter}-{event_kind}",
                        "companyId": company,
                        "costKey": "interview_minutes",
                        "occurredAt": format_instant(at),
                        "minutes": amount,
                        "isTest": event_kind == "test",
                    }
                )
            sent.append(body)
        with db.transaction(write=True) as session:
            ingest.ingest(session, {"events": body}, now)
        reference.batch(
            [(event["id"], event["id"].split("-")[1], event["minutes"]) for event in body]
        )
        _remembered_is_exact(db, window, reference)
    with db.transaction(write=False) as session:
        recorded = sorted(session.scalars(select(ThresholdCrossing.threshold)))
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert recorded == sorted(reference.fired)
    assert deliveries == 2 * len(reference.fired)
