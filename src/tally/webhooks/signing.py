"""Standard Webhooks headers: webhook-id, webhook-timestamp, webhook-signature."""

import secrets
from base64 import b64encode
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes (the signing key itself)."""
    return SECRET_PREFIX + b64encode(secrets.token_bytes(32)).decode("ascii")


def headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """Sign `id.timestamp.body` with the secret's decoded bytes (HMAC-SHA256, "v1,")."""
    at = at.replace(microsecond=0)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "content-type": "application/json",
    }
