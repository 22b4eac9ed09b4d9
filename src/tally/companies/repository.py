"""SQL for companies and ATS integrations."""

import uuid
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from tally.companies.models import AtsIntegration, Company


def get_company(session: Session, company_id: uuid.UUID) -> Company | None:
    return session.get(Company, company_id)


def get_ats(session: Session, ats_id: uuid.UUID) -> AtsIntegration | None:
    return session.get(AtsIntegration, ats_id)


class CompanyRef(NamedTuple):
    """What a usage answer needs of a company (cheaper than loading the entity)."""

    id: uuid.UUID
    name: str
    billing_system: str


_REF = select(Company.id, Company.name, Company.billing_system)


def _refs(session: Session, statement: Select[uuid.UUID, str, str]) -> list[CompanyRef]:
    return [CompanyRef(*row) for row in session.execute(statement)]


_REF_BY_ID = _REF.where(Company.id == bindparam("company_id"))


def company_ref(session: Session, company_id: uuid.UUID) -> CompanyRef | None:
    row = session.execute(_REF_BY_ID, {"company_id": company_id}).first()
    return CompanyRef(*row) if row is not None else None


def company_refs_of_ats(session: Session, ats_id: uuid.UUID) -> list[CompanyRef]:
    return _refs(session, _REF.where(Company.ats_integration_id == ats_id))


def all_company_refs(session: Session) -> list[CompanyRef]:
    return _refs(session, _REF)


def existing_company_ids(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Billing system of each of these ids that exists."""
    if not ids:
        return {}
    rows = session.execute(select(Company.id, Company.billing_system).where(Company.id.in_(ids)))
    return {row.id: row.billing_system for row in rows}


def page_companies(session: Session, offset: int, limit: int) -> tuple[list[Company], int]:
    total = session.scalar(select(func.count()).select_from(Company)) or 0
    rows = session.scalars(
        select(Company).order_by(Company.created_at, Company.id).offset(offset).limit(limit)
    )
    return list(rows), total


def page_ats(session: Session, offset: int, limit: int) -> tuple[list[AtsIntegration], int]:
    total = session.scalar(select(func.count()).select_from(AtsIntegration)) or 0
    rows = session.scalars(
        select(AtsIntegration)
        .order_by(AtsIntegration.created_at, AtsIntegration.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total
