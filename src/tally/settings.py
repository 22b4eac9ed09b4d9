"""Configuration from the environment (prefix TALLY_)."""

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from pydantic import AwareDatetime, PositiveFloat, PositiveInt, StringConstraints
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
    # Observability and transport limits (docs/operations.md, docs/decisions.md).
    # When set, /metrics wants "Authorization: Bearer <token>"; unset, it is open.
    metrics_token: str | None = None
    # How long /readyz waits for the database before answering 503.
    ready_timeout_seconds: float = 2.0
    # A connection must deliver a whole request head within this time (slowloris),
    # and a whole body within body_timeout_seconds of its head.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 60.0
    # Idle time between keep-alive requests before the server closes the connection.
    keep_alive_timeout_seconds: int = 5
    # Open connections per process before new requests get 503 (also kept below
    # the file-descriptor limit); the listening socket's backlog; the largest head.
    max_connections: int = 1000
    backlog: int = 2048
    max_header_bytes: int = 16 * 1024
    # At most one line per this many seconds for log messages a client can repeat.
    log_repeat_interval_seconds: float = 60.0
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
    # How long a request may wait for the database's write admission, a worker
    # thread, a pooled connection or a lock before it gets 503 with Retry-After.
    write_wait_seconds: float = 10.0
    # The unfolded tail of usage changes (docs/performance.md, "The write path:
    # deltas and folding"). Every serving process folds it into the running
    # totals in the background (unless usage_folder is false) when it holds
    # usage_fold_rows rows, and at least every usage_fold_seconds while it is not empty.
    usage_folder: bool = True
    usage_fold_rows: PositiveInt = 20_000
    usage_fold_seconds: PositiveFloat = 2.0
    # Shift the running totals in each write's own transaction instead (the
    # behaviour before the tail; for comparison).
    usage_fold_inline: bool = False
    # No event may be dated earlier (issue 10): bounds what one late event costs.
    history_start: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
