"""Redis's cost per rate-limited request: round trips, commands and CPU time.

    .venv/bin/python -m bench.redislimits --requests 5000

Starts a private redis-server, then admits --requests requests of one key
through tally's own limiter (tally.auth.ratelimit.RateLimiter, the code every
request with a company or ATS key runs: the per-address check, then the
minute and hour windows), with the default limits of a company key (60 a
minute, 2,000 an hour: past the 60th request the key is refused, which
skips the two counting calls) and with the benchmark keys' limits (a million
a minute: every request admitted). Prints
Redis's script calls, commands and CPU microseconds per request, from INFO
before and after, and the wall time per request on this client.
"""

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis

from bench.scaleout import PRIVATE, private_redis
from tally.auth.ratelimit import RateLimiter
from tally.auth.repository import KeyRecord
from tally.auth.scopes import KeyKind
from tally.settings import Settings


def _key(per_minute: int | None, per_hour: int | None) -> KeyRecord:
    return KeyRecord(
        id=uuid.uuid4(),
        kind=KeyKind.COMPANY,
        company_id=uuid.uuid4(),
        ats_integration_id=None,
        scopes=["read:billing"],
        allowed_ips=None,
        expires_at=None,
        revoked_at=None,
        rate_limit_per_minute=per_minute,
        rate_limit_per_hour=per_hour,
        last_used_at=datetime.now(UTC),
    )


def _counters(client: "redis.Redis") -> tuple[int, int, float]:
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    cpu: dict[str, Any] = client.info("cpu")  # type: ignore[assignment]
    commands = sum(int(item["calls"]) for item in stats.values())
    scripts = sum(int(stats[name]["calls"]) for name in ("cmdstat_evalsha",) if name in stats)
    return commands, scripts, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def _admit(limits: RateLimiter, key: KeyRecord, requests: int) -> None:
    for _ in range(requests):
        await limits.admit_address("192.0.2.1")
        await limits.admit_key(key)


async def _measure(
    url: str, client: "redis.Redis", key: KeyRecord, requests: int
) -> tuple[tuple[int, int, float], tuple[int, int, float], float]:
    settings = Settings(redis_url=url, redis_key_prefix=f"bench-{uuid.uuid4().hex[:6]}")
    limits = RateLimiter(settings)
    try:
        await _admit(limits, key, 10)  # scripts loaded, connection open
        before = _counters(client)
        began = time.perf_counter()
        await _admit(limits, key, requests)
        wall = time.perf_counter() - began
        return before, _counters(client), wall
    finally:
        await limits.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redislimits")
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args(argv)
    print(
        "| key limits | requests | round trips per request | commands per request"
        " | Redis CPU µs per request | wall µs per request |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    with private_redis(PRIVATE) as url:
        assert url is not None
        client = redis.Redis.from_url(url)
        for label, minute, hour in (
            ("company default (60/min, 2,000/h)", None, None),
            ("benchmark keys (1,000,000/min, 60,000,000/h)", 1_000_000, 60_000_000),
        ):
            before, after, wall = asyncio.run(
                _measure(url, client, _key(minute, hour), args.requests)
            )
            # Less the two INFO calls of the first count.
            commands = after[0] - before[0] - 2
            print(
                f"| {label} | {args.requests:,} | {(after[1] - before[1]) / args.requests:.1f}"
                f" | {commands / args.requests:.1f}"
                f" | {(after[2] - before[2]) / args.requests * 1e6:,.0f}"
                f" | {wall / args.requests * 1e6:,.0f} |"
            )
        client.close()


if __name__ == "__main__":
    main()
