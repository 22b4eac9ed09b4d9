"""The cost of counting one request against a key's limits, in memory and in Redis.

    .venv/bin/python -m bench.ratelimit [--requests N] [--per-minute N] [--per-hour N]
        [--redis-url redis://127.0.0.1:6379/0]

Prints the median and 99th percentile of `RateLimiter.admit_key` (the work
authentication adds to every request of a limited key). Redis keys go under
a fresh prefix and are deleted afterwards.
"""

import argparse
import asyncio
import statistics
import time
import uuid

import redis

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


async def _measure(settings: Settings, key: KeyRecord, requests: int) -> tuple[float, float]:
    limiter = RateLimiter(settings)
    try:
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            await limiter.admit_key(key)
            samples.append(time.perf_counter() - started)
    finally:
        await limiter.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--per-minute", type=int, default=1_000_000)
    parser.add_argument("--per-hour", type=int, default=60_000_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    prefix = f"tally-bench-{uuid.uuid4().hex}"
    runs = {
        "memory": Settings(),
        "redis": Settings(redis_url=args.redis_url, redis_key_prefix=prefix),
    }
    try:
        for name, settings in runs.items():
            key = _key(args.per_minute, args.per_hour)
            median, p99 = asyncio.run(_measure(settings, key, args.requests))
            print(f"{name}: admit_key median {median * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us")
    finally:
        client = redis.Redis.from_url(args.redis_url)
        for name in client.scan_iter(match=f"{prefix}*"):
            client.delete(name)
        client.close()


if __name__ == "__main__":
    main()
