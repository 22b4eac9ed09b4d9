"""Rate limits per key and per client address (SPEC 10), with the `limits` library.

Every key has a per-minute and a per-hour limit, counted in moving windows
(a request is refused when the last 60 s, or the last 3,600 s, already hold
the limit's number of admitted requests; there is no window edge at which a
burst of twice the limit gets through). Company and ATS keys default to 60 a
minute and 2,000 an hour, platform keys to unlimited; a key's own
`rateLimitPerMinute` / `rateLimitPerHour` replace the default of its kind.

Counters live in Redis when TALLY_REDIS_URL is set, so every process and
machine serving the database shares one limit, else in this process's memory.
If Redis cannot be reached, the limiter fails over to this process's memory
(with a warning in the log) and tries Redis again a few seconds later:
rate limiting protects the service, it is not worth refusing billing traffic
for, and per-process limits still slow an abuser down.

Requests that fail authentication are counted per client address: once an
address has failed `auth_failures_per_minute` times (100) in the last minute,
its requests are refused with 429 before their key is even looked up, until
the window frees up. A key guesser is slowed to 100 guesses a minute and
learns nothing about the keys it tries meanwhile; a misconfigured client is
locked out for at most a minute.
"""

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits import strategies as sync_strategies
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.util import WindowStats
from redis.asyncio import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally.auth.repository import KeyRecord
from tally.auth.scopes import KeyKind
from tally.core.headers import ResponseHeaders, add_response_headers
from tally.errors import TallyError
from tally.settings import Settings

log = logging.getLogger("tally.ratelimit")

# How long to stay on per-process counters after Redis failed.
REDIS_RETRY_SECONDS = 5.0
# Where RateLimits puts the limiter in each request's ASGI scope.
SCOPE_KEY = "tally.rate_limiter"

T = TypeVar("T")


class RateLimited(TallyError):
    code = "RATE_LIMITED"
    status = 429


@dataclass(frozen=True, slots=True)
class Window:
    """One limit as it stands after a request: what the headers say."""

    name: str  # "Minute" or "Hour", as in X-RateLimit-Limit-Minute
    limit: int
    remaining: int
    reset: int  # Unix seconds when the oldest counted request leaves the window

    def headers(self) -> dict[str, str]:
        return {
            f"X-RateLimit-Limit-{self.name}": str(self.limit),
            f"X-RateLimit-Remaining-{self.name}": str(self.remaining),
            f"X-RateLimit-Reset-{self.name}": str(self.reset),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may go on, and the headers its answer carries."""

    allowed: bool
    windows: tuple[Window, ...]
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for window in self.windows:
            headers |= window.headers()
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def key_limits(key: KeyRecord, settings: Settings) -> tuple[RateLimitItem, ...]:
    """The limits of a key: its own, else its kind's default; none means unlimited."""
    limited_kind = KeyKind(key.kind) is not KeyKind.PLATFORM
    per_minute = key.rate_limit_per_minute or (
        settings.default_rate_limit_minute if limited_kind else None
    )
    per_hour = key.rate_limit_per_hour or (
        settings.default_rate_limit_hour if limited_kind else None
    )
    items: list[RateLimitItem] = []
    if per_minute is not None:
        items.append(RateLimitItemPerMinute(per_minute, namespace="key"))
    if per_hour is not None:
        items.append(RateLimitItemPerHour(per_hour, namespace="key"))
    return tuple(items)


def _window_name(item: RateLimitItem) -> str:
    return "Minute" if item.get_expiry() == 60 else "Hour"


def _seconds_until(instant: float, now: float) -> int:
    return max(1, math.ceil(instant - now))


def _windows(
    items: tuple[RateLimitItem, ...], stats: list[WindowStats], admitted: bool
) -> tuple[Window, ...]:
    """The headers' view of each limit; `stats` were read before this request counted.

    Reading before counting costs no extra round trip: an admitted request
    takes one slot and, in a window that was empty, starts it now (the
    library reports an empty window as resetting one period from now).
    """
    spent = 1 if admitted else 0
    return tuple(
        Window(
            _window_name(item),
            item.amount,
            max(0, window.remaining - spent),
            math.ceil(window.reset_time),
        )
        for item, window in zip(items, stats, strict=True)
    )


class Limiter(Protocol):
    """What the limiter uses of a moving-window strategy (limits.aio.strategies)."""

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool: ...

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class InMemory:
    """limits' synchronous moving window over its synchronous memory storage, awaitable.

    Its asynchronous memory storage (limits.aio.storage.MemoryStorage) runs
    an expiry task after every hit that hops to a worker thread once for
    every key counted in the last hour, and inserts each hit at the head of
    a list; under steady traffic that cost about 0.2-0.3 ms of CPU per
    request and grew with the requests counted. The synchronous storage,
    the same strategy and bookkeeping, costs about 25 us: nothing in it
    waits, so it runs on the event loop as it is (docs/performance.md, "Three
    smaller cuts").
    """

    def __init__(self) -> None:
        self._limiter = sync_strategies.MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        return self._limiter.hit(item, *identifiers)

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        return self._limiter.test(item, *identifiers)

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return self._limiter.get_window_stats(item, *identifiers)


class RateLimiter:
    """The counters of one serving process: Redis-backed or in memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._memory: Limiter = InMemory()
        self._pool: ConnectionPool | None = None
        self._redis: MovingWindowRateLimiter | None = None
        self._redis_down_until = 0.0
        self._failures = RateLimitItemPerMinute(settings.auth_failures_per_minute, namespace="ip")
        if settings.redis_url:
            self._pool = ConnectionPool.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout_seconds,
                socket_connect_timeout=settings.redis_timeout_seconds,
            )
            storage: Storage = RedisStorage(
                "async+" + settings.redis_url,
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=settings.redis_key_prefix,
                # Our own pool, so that close() can release its connections;
                # limits documents the option but types options narrowly.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
            self._redis = MovingWindowRateLimiter(storage)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def _run(self, work: Callable[[Limiter], Awaitable[T]]) -> T:
        """Run on Redis when configured and up, else (or on failure) in memory."""
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                result = await work(self._redis)
            except StorageError as exc:
                log.warning(
                    "rate limits: Redis unreachable (%s); counting in this process for %.0f s",
                    type(exc.storage_error).__name__,
                    REDIS_RETRY_SECONDS,
                )
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            else:
                if self._redis_down_until:
                    log.warning("rate limits: Redis reachable again; counting there")
                    self._redis_down_until = 0.0
                return result
        return await work(self._memory)

    async def admit_key(self, key: KeyRecord) -> Verdict:
        """Count one request of a key, unless a limit is full: then 429, counted nowhere."""
        items = key_limits(key, self.settings)
        if not items:
            return Verdict(allowed=True, windows=())
        identity = str(key.id)

        async def work(limiter: Limiter) -> Verdict:
            before = [await limiter.get_window_stats(item, identity) for item in items]
            full = [stats.reset_time for stats in before if stats.remaining < 1]
            if not full:
                for item in items:
                    if not await limiter.hit(item, identity):
                        # Lost a race for the last slot; an earlier, shorter
                        # window may have counted this request: harmless.
                        return await self._refused_key(limiter, items, identity)
                return Verdict(allowed=True, windows=_windows(items, before, admitted=True))
            retry = _seconds_until(max(full), time.time())
            windows = _windows(items, before, admitted=False)
            return Verdict(allowed=False, windows=windows, retry_after=retry)

        return await self._run(work)

    async def _refused_key(
        self, limiter: Limiter, items: tuple[RateLimitItem, ...], identity: str
    ) -> Verdict:
        stats = [await limiter.get_window_stats(item, identity) for item in items]
        full = [window.reset_time for window in stats if window.remaining < 1]
        retry = _seconds_until(max(full, default=time.time()), time.time())
        return Verdict(allowed=False, windows=_windows(items, stats, False), retry_after=retry)

    async def admit_address(self, address: str) -> Verdict:
        """Whether an address may try a key at all (it has not failed too often)."""

        async def work(limiter: Limiter) -> Verdict:
            if await limiter.test(self._failures, address):
                return Verdict(allowed=True, windows=())
            return await self._refused_address(limiter, address)

        return await self._run(work)

    async def count_failure(self, address: str) -> Verdict:
        """Count a failed authentication; refused when past the address's limit."""

        async def work(limiter: Limiter) -> Verdict:
            if await limiter.hit(self._failures, address):
                return Verdict(allowed=True, windows=())
            return await self._refused_address(limiter, address)

        return await self._run(work)

    async def _refused_address(self, limiter: Limiter, address: str) -> Verdict:
        stats = await limiter.get_window_stats(self._failures, address)
        retry = _seconds_until(stats.reset_time, time.time())
        return Verdict(allowed=False, windows=(), retry_after=retry)


def enforce(scope: Scope, verdict: Verdict) -> None:
    """Every answer to this request carries the verdict's headers; 429 if it is refused."""
    add_response_headers(scope, verdict.headers())
    if not verdict.allowed:
        raise RateLimited(
            "too many requests; retry after the number of seconds in Retry-After",
            details={"retryAfterSeconds": verdict.retry_after},
        )


class RateLimits(ResponseHeaders):
    """The process's limiter, handed to authentication, and the headers on every answer.

    A pure ASGI middleware (routes build their own Response objects): it puts
    the limiter in each request's scope, writes the headers authentication
    recorded onto whatever answer goes out (200, 4xx, 429), and closes the
    Redis connections when the server shuts down.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        super().__init__(app)
        self.limiter = RateLimiter(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing(send))
            return
        scope[SCOPE_KEY] = self.limiter
        await super().__call__(scope, receive, send)

    def _closing(self, send: Send) -> Send:
        async def send_after_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.limiter.close()
            await send(message)

        return send_after_closing


def limiter_of(scope: Scope) -> RateLimiter:
    """The limiter RateLimits put in this request's scope."""
    limiter: RateLimiter = scope[SCOPE_KEY]
    return limiter
