"""The authenticated caller, resolved once per request from its key."""

import uuid
from dataclasses import dataclass

from tally.auth.scopes import KeyKind, Scope


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    kind: KeyKind
    scopes: frozenset[Scope]
    company_id: uuid.UUID | None
    ats_integration_id: uuid.UUID | None
