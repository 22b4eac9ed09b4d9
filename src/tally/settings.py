"""Configuration from the environment (prefix TALLY_)."""

from datetime import UTC, datetime
from functools import lru_cache

from pydantic import AwareDatetime
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///tally.db"


class Settings(BaseSettings):
    """Every knob tally reads; each can also be given as a CLI flag where one exists."""

    model_config = SettingsConfigDict(env_prefix="TALLY_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1024 * 1024
    # How stale lastUsedAt may get before a request writes it again (seconds).
    last_used_resolution_seconds: int = 60
    log_level: str = "info"
    # Threads serving synchronous routes; the SQLite pool holds 8 connections.
    worker_threads: int = 8
    # Addresses of reverse proxies whose X-Forwarded-For is trusted (comma
    # separated, or "*"). Unset: the peer address is the client, always, so
    # allowedIps cannot be bypassed with a forged header.
    forwarded_allow_ips: str | None = None
    # How long a request may wait for the database's write admission, a worker
    # thread, a pooled connection or a lock before it gets 503 with Retry-After.
    write_wait_seconds: float = 10.0
    # No event may be dated earlier (issue 10): bounds what one late event costs.
    history_start: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
