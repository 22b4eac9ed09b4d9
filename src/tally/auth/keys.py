"""Generating, hashing and checking API keys.

A key is `sk_live_` (or `sk_test_`) followed by 43 base62 characters drawn
with `secrets`: 43 * log2(62) = 256.03 bits of randomness. The first 8 of
those characters, with the prefix, form the lookup id: stored in clear and
shown in lists (`prefix`) so people can recognise a key. The whole key is
stored only as its SHA-256 digest; since keys are uniformly random and long, a
fast hash is safe (there is nothing to brute-force) and keeps authentication
cheap.

A presented key is found by its digest alone (a unique index), never by its
clear lookup id: an unknown key and a known lookup id with a wrong secret then
cost exactly the same (hash, one indexed equality lookup, no row), so timing
cannot tell whether a lookup id exists. Comparing digests in the index leaks
nothing useful either: an attacker cannot choose a digest without a preimage.
"""

import hashlib
import re
import secrets
import string

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 43
LOOKUP_LENGTH = 8
PREFIXES = {"live": "sk_live_", "test": "sk_test_"}
KEY_PATTERN = re.compile(r"^sk_(live|test)_[0-9A-Za-z]{43}$")


def generate_key(environment: str = "live") -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIXES[environment] + body


def lookup_id(key: str) -> str:
    """The non-secret part of a key: its prefix and first 8 random characters."""
    return key[: len("sk_live_") + LOOKUP_LENGTH]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def is_well_formed(key: str) -> bool:
    return KEY_PATTERN.fullmatch(key) is not None
