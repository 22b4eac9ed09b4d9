"""Plans: writing them, and each company's standing in its current period."""

import uuid
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.auth.principal import Principal
from tally.auth.tenancy import visible_companies
from tally.companies import repository as companies
from tally.companies.repository import CompanyRef
from tally.core.quantities import from_scaled, to_scaled
from tally.errors import NotFound
from tally.plans import repository
from tally.plans.models import Plan
from tally.plans.periods import Period, Window, current_window
from tally.plans.schemas import AllowanceOut, AllowancesOut, PlanIn, PlanOut
from tally.plans.standing import reached, standing
from tally.plans.usage import used_by_company

NO_PLAN = "this company has no plan"


def _company(session: Session, company_id: uuid.UUID) -> CompanyRef:
    company = companies.company_ref(session, company_id)
    if company is None:
        raise NotFound("no company with this id")
    return company


class PlanLike(Protocol):
    """The columns of a plan that its periods and thresholds need (an entity or a row)."""

    @property
    def period(self) -> str: ...
    @property
    def anchor_day(self) -> int: ...
    @property
    def anchor_month(self) -> int: ...
    @property
    def time_zone(self) -> str: ...
    @property
    def thresholds(self) -> str: ...


def thresholds_of(plan: PlanLike) -> list[int]:
    return [int(part) for part in plan.thresholds.split(",") if part]


def window_of(plan: PlanLike, now: datetime) -> Window:
    period: Period = "year" if plan.period == "year" else "month"
    return current_window(period, plan.anchor_day, plan.anchor_month, plan.time_zone, now)


def plan_out(plan: Plan, company: CompanyRef) -> PlanOut:
    return PlanOut(
        company_id=plan.company_id,
        unit="credits" if company.billing_system == "credits" else "minutes",
        allowance=from_scaled(plan.allowance),
        period="year" if plan.period == "year" else "month",
        anchor_day=plan.anchor_day,
        anchor_month=plan.anchor_month,
        time_zone=plan.time_zone,
        thresholds=thresholds_of(plan),
        created_at=plan.created_at,
        updated_at=plan.updated_at,
    )


def put_plan(session: Session, company_id: uuid.UUID, body: PlanIn, now: datetime) -> PlanOut:
    """Create or replace a company's plan."""
    company = _company(session, company_id)
    plan = repository.get_plan(session, company_id)
    if plan is None:
        plan = Plan(company_id=company_id, created_at=now)
        session.add(plan)
    anchor_month = body.anchor_month
    if anchor_month is None:
        # Keep the month a plan already has; a new plan starts its year now.
        anchor_month = plan.anchor_month or now.astimezone(ZoneInfo(body.time_zone)).month
    plan.allowance = to_scaled(body.allowance)
    plan.period = body.period
    plan.anchor_day = body.anchor_day
    plan.anchor_month = anchor_month
    plan.time_zone = body.time_zone
    plan.thresholds = ",".join(str(threshold) for threshold in body.thresholds)
    plan.updated_at = now
    # Usage counted under a plan before (or without one) is counted again.
    repository.forget_used(session, [company_id])
    session.flush()
    return plan_out(plan, company)


def get_plan(session: Session, company_id: uuid.UUID) -> PlanOut:
    company = _company(session, company_id)
    plan = repository.get_plan(session, company_id)
    if plan is None:
        raise NotFound(NO_PLAN)
    return plan_out(plan, company)


def delete_plan(session: Session, company_id: uuid.UUID) -> PlanOut:
    """Remove a plan; crossings already recorded stay (they were sent)."""
    removed = get_plan(session, company_id)
    plan = repository.get_plan(session, company_id)
    session.delete(plan)
    repository.forget_used(session, [company_id])
    session.flush()
    return removed


def allowances(
    session: Session, principal: Principal, requested: uuid.UUID | None, now: datetime
) -> AllowancesOut:
    """GET /billing/allowance: the companies in the caller's scope that have a plan."""
    visible = visible_companies(session, principal, requested)
    plans = {
        plan.company_id: plan for plan in repository.plans_of(session, [c.id for c in visible])
    }
    planned = sorted(
        (company for company in visible if company.id in plans),
        key=lambda company: (company.name, str(company.id)),
    )
    windows = {company.id: window_of(plans[company.id], now) for company in planned}
    used: dict[uuid.UUID, int] = {}
    by_start: dict[datetime, list[CompanyRef]] = {}
    for company in planned:
        by_start.setdefault(windows[company.id].start, []).append(company)
    for start, group in by_start.items():
        used |= used_by_company(session, group, start, now)
    recorded = repository.recorded_thresholds(
        session, [(company_id, window.start) for company_id, window in windows.items()]
    )
    entries = [
        _entry(company, plans[company.id], windows[company.id], used[company.id], recorded, now)
        for company in planned
    ]
    return AllowancesOut(companies=entries)


def _entry(
    company: CompanyRef,
    plan: Plan,
    window: Window,
    used: int,
    recorded: dict[uuid.UUID, set[int]],
    now: datetime,
) -> AllowanceOut:
    figures = standing(plan.allowance, used, window, now)
    unit = "credits" if company.billing_system == "credits" else "minutes"
    crossed = [
        threshold
        for threshold in thresholds_of(plan)
        if threshold in recorded[company.id] or reached(used, plan.allowance, threshold)
    ]
    return AllowanceOut(
        company_id=company.id,
        company_name=company.name,
        billing_system=unit,
        unit=unit,
        period_start=window.start,
        period_end=window.end,
        allowance=from_scaled(plan.allowance),
        used=figures.used,
        remaining=figures.remaining,
        percent_used=figures.percent_used,
        projected_used=figures.projected_used,
        crossed_thresholds=crossed,
        status="exceeded" if figures.exceeded else "ok",
    )
