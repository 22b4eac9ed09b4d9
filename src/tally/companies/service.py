"""Creating and changing companies and ATS integrations."""

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from tally.companies import repository
from tally.companies.models import AtsIntegration, Company
from tally.companies.schemas import AtsIn, CompanyIn, CompanyPatch
from tally.errors import Conflict, NotFound, ValidationFailed
from tally.usage import units


def create_ats(session: Session, body: AtsIn, now: datetime) -> AtsIntegration:
    ats = AtsIntegration(id=uuid.uuid4(), name=body.name, created_at=now)
    session.add(ats)
    session.flush()
    return ats


def _require_ats(session: Session, ats_id: uuid.UUID | None) -> None:
    if ats_id is not None and repository.get_ats(session, ats_id) is None:
        raise ValidationFailed.field("atsIntegrationId", "no ATS integration with this id")


def create_company(session: Session, body: CompanyIn, now: datetime) -> Company:
    _require_ats(session, body.ats_integration_id)
    company_id = body.id or uuid.uuid4()
    if repository.get_company(session, company_id) is not None:
        raise Conflict("a company with this id exists", details={"id": str(company_id)})
    company = Company(
        id=company_id,
        name=body.name,
        billing_system=body.billing_system,
        ats_integration_id=body.ats_integration_id,
        created_at=now,
    )
    session.add(company)
    session.flush()
    return company


def get_company(session: Session, company_id: uuid.UUID) -> Company:
    company = repository.get_company(session, company_id)
    if company is None:
        raise NotFound("no company with this id")
    return company


def update_company(session: Session, company_id: uuid.UUID, patch: CompanyPatch) -> Company:
    """Apply the fields present in the patch; an explicit null atsIntegrationId detaches."""
    company = get_company(session, company_id)
    given = patch.model_fields_set
    if "name" in given:
        if patch.name is None:
            raise ValidationFailed.field("name", "must not be null")
        company.name = patch.name
    if "billing_system" in given:
        if patch.billing_system is None:
            raise ValidationFailed.field("billingSystem", "must not be null")
        if patch.billing_system != company.billing_system:
            old = company.billing_system
            company.billing_system = patch.billing_system
            # The row lock first, then the fold lock: the order folds take them in.
            session.flush()
            units.move_company(session, company.id, old, patch.billing_system)
    if "ats_integration_id" in given:
        _require_ats(session, patch.ats_integration_id)
        company.ats_integration_id = patch.ats_integration_id
    session.flush()
    return company
