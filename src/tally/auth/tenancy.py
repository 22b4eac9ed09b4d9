"""Tenant isolation, in one place: which companies a caller may see.

Every read of usage goes through visible_companies; nothing else turns a
company id from a request into data.
"""

import uuid

from sqlalchemy.orm import Session

from tally.auth.principal import Principal
from tally.auth.scopes import KeyKind
from tally.companies import repository
from tally.companies.repository import CompanyRef
from tally.errors import CompanyNotAccessible

NOT_ACCESSIBLE = "company is not accessible with this key"


def visible_companies(
    session: Session, principal: Principal, requested: uuid.UUID | None
) -> list[CompanyRef]:
    """The companies this caller's answer covers.

    A company key always sees exactly its own company (a requested id is
    ignored). An ATS key sees the companies its integration manages; asking
    for any other id is 403 whether or not that company exists, so an ATS
    cannot probe for companies. A platform key sees every company.

    A company or ATS key's companies come with the principal when
    authentication read them with the key (one statement,
    tally.auth.service.authenticate); they are read here otherwise.
    """
    if principal.kind is KeyKind.COMPANY:
        assert principal.company_id is not None
        if principal.companies is not None:
            own_refs = principal.companies
            return [company for company in own_refs if company.id == principal.company_id]
        own = repository.company_ref(session, principal.company_id)
        return [own] if own is not None else []
    if principal.kind is KeyKind.ATS:
        assert principal.ats_integration_id is not None
        managed = (
            list(principal.companies)
            if principal.companies is not None
            else repository.company_refs_of_ats(session, principal.ats_integration_id)
        )
        if requested is None:
            return managed
        chosen = [company for company in managed if company.id == requested]
        if not chosen:
            raise CompanyNotAccessible(NOT_ACCESSIBLE)
        return chosen
    if requested is None:
        return repository.all_company_refs(session)
    company = repository.company_ref(session, requested)
    if company is None:
        raise CompanyNotAccessible(NOT_ACCESSIBLE)
    return [company]
