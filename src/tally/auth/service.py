"""Authentication: from a bearer key and a client address to a Principal.

Every failure (no key, malformed, unknown, revoked, expired, address not
allowed) is the same 401 with the same message, so an attacker learns
nothing about which keys exist.
"""

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import Connection

from tally.auth import keys, repository
from tally.auth.principal import Principal
from tally.auth.repository import KeyRecord
from tally.auth.scopes import KeyKind, Scope
from tally.errors import InvalidApiKey

INVALID_KEY_MESSAGE = "missing, invalid, revoked or expired API key"


def _ip_allowed(allowed: list[str] | None, client_ip: str | None) -> bool:
    if not allowed:
        return True
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _usable(key: KeyRecord, client_ip: str | None, now: datetime) -> bool:
    if key.revoked_at is not None:
        return False
    if key.expires_at is not None and key.expires_at <= now:
        return False
    return _ip_allowed(key.allowed_ips, client_ip)


def authenticate(
    connection: Connection, raw_key: str | None, client_ip: str | None, now: datetime
) -> tuple[Principal, KeyRecord]:
    """The principal of a valid key, with its companies; InvalidApiKey for anything else.

    One statement reads the key and the companies it is tied to (its
    tenancy, tally.auth.tenancy), so a read needs no second lookup.
    """
    if raw_key is None or not keys.is_well_formed(raw_key):
        raise InvalidApiKey(INVALID_KEY_MESSAGE)
    # By the digest of the whole key: the same work whether or not any key
    # shares this one's lookup id (tally.auth.keys).
    found = repository.find_with_companies(connection, keys.hash_key(raw_key))
    if found is None or not _usable(found[0], client_ip, now):
        raise InvalidApiKey(INVALID_KEY_MESSAGE)
    key, companies = found
    principal = Principal(
        key_id=key.id,
        kind=KeyKind(key.kind),
        scopes=frozenset(Scope(scope) for scope in key.scopes),
        company_id=key.company_id,
        ats_integration_id=key.ats_integration_id,
        companies=companies,
    )
    return principal, key


def needs_touch(key: KeyRecord, now: datetime, resolution_seconds: int) -> bool:
    """Whether lastUsedAt is stale enough to be worth a write."""
    if key.last_used_at is None:
        return True
    return now - key.last_used_at >= timedelta(seconds=resolution_seconds)
