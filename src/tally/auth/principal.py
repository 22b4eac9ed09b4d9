"""The authenticated caller, resolved once per request from its key."""

import uuid
from dataclasses import dataclass

from tally.auth.scopes import KeyKind, Scope
from tally.companies.repository import CompanyRef


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    kind: KeyKind
    scopes: frozenset[Scope]
    company_id: uuid.UUID | None
    ats_integration_id: uuid.UUID | None
    # The companies the key is tied to, read with the key itself: its company
    # (a company key) or its integration's (an ATS key); none for a platform
    # key. None when they were not read (tally.auth.tenancy then reads them).
    companies: tuple[CompanyRef, ...] | None = None
