"""Configuration from the environment (prefix TALLY_)."""

from functools import lru_cache

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
    # Threshold webhooks (docs/webhooks.md). Private, loopback and link-local
    # targets (and plain http://, which is allowed only to them) are refused
    # unless this is set: no requests into the operator's own network.
    webhook_allow_private: bool = False
    # Run the delivery worker inside every serving process; set to false when
    # `tally worker` runs apart.
    webhook_worker: bool = True
    # How often an idle worker looks for due deliveries (seconds).
    webhook_poll_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    # Waits before each retry; after the last one a delivery is failed.
    webhook_backoff_seconds: tuple[float, ...] = (5, 30, 120, 600, 3600, 21600)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
