"""SQL of webhook endpoints, the crossings outbox and deliveries."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.companies.models import Company
from tally.companies.repository import CompanyRef
from tally.db.types import UtcMicros
from tally.plans.models import Plan, PlanUsage
from tally.webhooks.models import ThresholdCrossing, WebhookDelivery, WebhookEndpoint

# --- endpoints


def get_endpoint(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    return endpoint if endpoint is not None and endpoint.deleted_at is None else None


def page_endpoints(session: Session, offset: int, limit: int) -> tuple[list[WebhookEndpoint], int]:
    live = WebhookEndpoint.deleted_at.is_(None)
    total = session.scalar(select(func.count()).select_from(WebhookEndpoint).where(live)) or 0
    rows = session.scalars(
        select(WebhookEndpoint)
        .where(live)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total


def fail_pending_of(session: Session, endpoint_id: uuid.UUID, reason: str) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="failed", next_attempt_at=None, last_error=reason)
    )


# --- the outbox


class PlannedCompany(NamedTuple):
    """A company with a plan, as the outbox needs it (plain columns, no ORM objects)."""

    company_id: uuid.UUID
    allowance: int
    period: str
    anchor_day: int
    anchor_month: int
    time_zone: str
    thresholds: str
    name: str
    billing_system: str
    ats_integration_id: uuid.UUID | None
    # What the outbox last counted (plan_usage): its period, unit and amount.
    counted_start: datetime | None
    counted_end: datetime | None
    counted_unit: str | None
    counted_used: int | None

    @property
    def company(self) -> CompanyRef:
        return CompanyRef(self.company_id, self.name, self.billing_system)

    def counted(self, start: datetime, end: datetime) -> int | None:
        """What the outbox last counted this company used in [start, end), if it did."""
        if (self.counted_start, self.counted_end, self.counted_unit) != (
            start,
            end,
            self.billing_system,
        ):
            return None
        return self.counted_used


_PLANNED = (
    select(
        Plan.company_id,
        Plan.allowance,
        Plan.period,
        Plan.anchor_day,
        Plan.anchor_month,
        Plan.time_zone,
        Plan.thresholds,
        Company.name,
        Company.billing_system,
        Company.ats_integration_id,
        PlanUsage.period_start,
        PlanUsage.period_end,
        PlanUsage.billing_system,
        PlanUsage.used,
        ThresholdCrossing.period_start,
        ThresholdCrossing.threshold,
    )
    .join(Company, Company.id == Plan.company_id)
    .outerjoin(PlanUsage, PlanUsage.company_id == Plan.company_id)
    .outerjoin(
        ThresholdCrossing,
        and_(
            ThresholdCrossing.company_id == Plan.company_id,
            ThresholdCrossing.period_start >= bindparam("since", type_=UtcMicros),
        ),
    )
)


def planned_companies(
    session: Session, company_ids: Sequence[uuid.UUID], since: datetime
) -> tuple[list[PlannedCompany], dict[uuid.UUID, set[tuple[datetime, int]]]]:
    """Those of these companies that have a plan, and the crossings recorded since `since`.

    One statement for both: it runs for every ingested batch.
    """
    planned: dict[uuid.UUID, PlannedCompany] = {}
    recorded: dict[uuid.UUID, set[tuple[datetime, int]]] = {}
    rows = session.execute(_PLANNED.where(Plan.company_id.in_(company_ids)), {"since": since})
    for row in rows:
        company_id = row[0]
        if company_id not in planned:
            planned[company_id] = PlannedCompany._make(row[:14])
            recorded[company_id] = set()
        if row[14] is not None:
            recorded[company_id].add((row[14], row[15]))
    return list(planned.values()), recorded


def insert_crossing(session: Session, values: dict[str, Any]) -> uuid.UUID | None:
    """Record a crossing once ever: the id if this call inserted it, None if it existed.

    On PostgreSQL a concurrent transaction inserting the same key waits for
    this one and then does nothing, so exactly one of them sees its id.
    """
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(ThresholdCrossing)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["company_id", "period_start", "threshold"])
        .returning(ThresholdCrossing.id)
    )
    inserted: uuid.UUID | None = session.execute(statement).scalar()
    return inserted


def matching_endpoints(
    session: Session, company_id: uuid.UUID, ats_id: uuid.UUID | None
) -> list[uuid.UUID]:
    """Live endpoints for this company: its own, its ATS's, and those for all."""
    for_all = and_(
        WebhookEndpoint.company_id.is_(None), WebhookEndpoint.ats_integration_id.is_(None)
    )
    clauses = [WebhookEndpoint.company_id == company_id, for_all]
    if ats_id is not None:
        clauses.append(WebhookEndpoint.ats_integration_id == ats_id)
    rows = session.scalars(
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.deleted_at.is_(None), or_(*clauses))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(rows)


def insert_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(WebhookDelivery), rows)


# --- deliveries


def page_deliveries(
    session: Session, endpoint_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[list[WebhookDelivery], int]:
    where = [] if endpoint_id is None else [WebhookDelivery.endpoint_id == endpoint_id]
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(*where)) or 0
    rows = session.scalars(
        select(WebhookDelivery)
        .where(*where)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total


def get_delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def any_due(session: Session, now: datetime) -> bool:
    """A cheap read: is there anything to send (the idle worker's poll)?"""
    found = session.scalar(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .limit(1)
    )
    return found is not None


class Claimed(NamedTuple):
    delivery_id: uuid.UUID
    url: str
    secret: str
    payload: str
    endpoint_removed: bool
    attempts: int


def claim_one(session: Session, now: datetime, lease_until: datetime) -> Claimed | None:
    """Take one due delivery for this worker until lease_until.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so workers never wait on each other.
    SQLite (no row locks, one writer at a time): the UPDATE is conditional on
    the row being as it was read, so two claimers cannot both win.
    """
    row = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.next_attempt_at, WebhookDelivery.attempts)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return None
    taken = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == row.id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at == row.next_attempt_at,
        )
        .values(next_attempt_at=lease_until)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    details = session.execute(
        select(
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookEndpoint.deleted_at,
            ThresholdCrossing.payload,
        )
        .join(WebhookDelivery, WebhookDelivery.endpoint_id == WebhookEndpoint.id)
        .join(ThresholdCrossing, ThresholdCrossing.id == WebhookDelivery.crossing_id)
        .where(WebhookDelivery.id == row.id)
    ).one()
    removed = details.deleted_at is not None
    return Claimed(row.id, details.url, details.secret, details.payload, removed, row.attempts)


def record_attempt(session: Session, delivery_id: uuid.UUID, values: dict[str, Any]) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending")
        .values(attempts=WebhookDelivery.attempts + 1, **values)
    )
