"""Scopes and key kinds."""

from enum import StrEnum


class Scope(StrEnum):
    READ_BILLING = "read:billing"
    WRITE_USAGE = "write:usage"
    ADMIN = "admin"


class KeyKind(StrEnum):
    COMPANY = "company"
    ATS = "ats"
    PLATFORM = "platform"


# Company and ATS keys are read-only views of their own usage.
ALLOWED_SCOPES: dict[KeyKind, frozenset[Scope]] = {
    KeyKind.COMPANY: frozenset({Scope.READ_BILLING}),
    KeyKind.ATS: frozenset({Scope.READ_BILLING}),
    KeyKind.PLATFORM: frozenset(Scope),
}
