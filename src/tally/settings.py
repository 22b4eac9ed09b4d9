"""Configuration from the environment (prefix TALLY_)."""

from functools import lru_cache
from typing import Annotated

from pydantic import PositiveFloat, PositiveInt, StringConstraints
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
    # Rate limits (SPEC 10, tally.auth.ratelimit). With a Redis URL
    # (redis:// or rediss://host:port/db) every process shares the counters, under keys
    # starting with the prefix; without one each process counts alone.
    redis_url: Annotated[str, StringConstraints(pattern=r"^rediss?://")] | None = None
    redis_key_prefix: str = "tally"
    # How long a Redis command may take before the limiter counts in-process.
    redis_timeout_seconds: PositiveFloat = 1.0
    # Defaults of company and ATS keys (platform keys: unlimited unless set).
    default_rate_limit_minute: PositiveInt = 60
    default_rate_limit_hour: PositiveInt = 2000
    # Failed authentications an address may make in a minute before its 429s.
    auth_failures_per_minute: PositiveInt = 100


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
