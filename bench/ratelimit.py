"""The cost of counting one request against a key's limits, in memory and in Redis.

    .venv/bin/python -m bench.ratelimit [--requests N] [--per-minute N] [--per-hour N]
        [--keys N] [--redis-url redis://127.0.0.1:6379/0]

Prints, per way of counting, the median and 99th percentile of
`RateLimiter.admit_key` (the work authentication adds to every request of a
limited key) and the process's CPU time per request, all threads, with one
turn of the event loop after each request as a server gives it (what a
storage schedules in the background, such as expiry, counts there). The
requests go round `--keys` keys. Besides tally's in-memory counters and
Redis, `memory (limits.aio)`: the library's asynchronous memory storage,
what the in-memory counters were before (docs/performance.md, "The
in-memory rate limiter"). Redis keys go under a fresh prefix and are
deleted afterwards.
"""

import argparse
import asyncio
import statistics
import time
import uuid

import redis
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from tally.auth.ratelimit import RateLimiter
from tally.auth.repository import KeyRecord
from tally.settings import Settings


def _key(per_minute: int, per_hour: int) -> KeyRecord:
    return KeyRecord(
        id=uuid.uuid4(),
        kind="company",
        company_id=uuid.uuid4(),
        ats_integration_id=None,
        scopes=["read:billing"],
        allowed_ips=None,
        expires_at=None,
        revoked_at=None,
        last_used_at=None,
        rate_limit_per_minute=per_minute,
        rate_limit_per_hour=per_hour,
    )


async def _measure(
    settings: Settings, keys: list[KeyRecord], requests: int, library_memory: bool
) -> tuple[float, float, float]:
    """Median and p99 seconds of admit_key, and CPU seconds per request."""
    limiter = RateLimiter(settings)
    if library_memory:
        limiter._memory = MovingWindowRateLimiter(MemoryStorage())
    try:
        samples = []
        cpu = time.process_time()
        for number in range(requests):
            started = time.perf_counter()
            await limiter.admit_key(keys[number % len(keys)])
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0)
        cpu = time.process_time() - cpu
    finally:
        await limiter.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)], cpu / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--per-minute", type=int, default=1_000_000)
    parser.add_argument("--per-hour", type=int, default=60_000_000)
    parser.add_argument("--keys", type=int, default=1, help="keys the requests go round")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    prefix = f"tally-bench-{uuid.uuid4().hex}"
    memory = Settings(redis_url=None)
    runs = {
        "memory": (memory, False),
        "memory (limits.aio)": (memory, True),
        "redis": (Settings(redis_url=args.redis_url, redis_key_prefix=prefix), False),
    }
    try:
        for name, (settings, library_memory) in runs.items():
            keys = [_key(args.per_minute, args.per_hour) for _ in range(args.keys)]
            median, p99, cpu = asyncio.run(_measure(settings, keys, args.requests, library_memory))
            print(
                f"{name}: admit_key median {median * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us, "
                f"CPU {cpu * 1e6:.0f} us a request"
            )
    finally:
        client = redis.Redis.from_url(args.redis_url)
        for name in client.scan_iter(match=f"{prefix}*"):
            client.delete(name)
        client.close()


if __name__ == "__main__":
    main()
