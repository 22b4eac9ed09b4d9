"""Ingestion rates: HTTP batches, `tally events import`, and the storage limit.

All three write fresh events (new ids, the same companies, time-ordered with
some late) into the scratch copy of the benchmark database. The storage
limit is a bare executemany of the same rows, 1,000 per transaction as tally
commits them, into a table with the columns of usage_events and no key,
index or constraint.
"""

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from bench.dataset import EventStream, build_world
from bench.load import Meta
from bench.measure import summary_ms
from bench.queries import Client
from tally.core.instants import to_micros, utcnow
from tally.db.driver import Driver
from tally.db.engine import Database
from tally.usage.repository import EVENT_COLUMNS

BATCH = 1000
LIVE_DAYS = 7  # fresh traffic lands in the last week of the history
LIMIT_TABLE = "bench_storage_limit"
REQUEST_TIMEOUT = 120.0
RETRY_AFTER = 1.0


def fresh_events(meta: Meta, seed: int, count: int, prefix: str) -> list[dict[str, Any]]:
    """About `count` new events of the dataset's companies, ids starting with prefix."""
    world = build_world(meta.seed, meta.anchor)
    stream = EventStream(seed, world, count, meta.anchor, prefix=prefix, days=LIVE_DAYS)
    return list(stream)


def encode_batches(events: list[dict[str, Any]]) -> list[bytes]:
    """Request bodies encoded up front, so the clients only send bytes."""
    return [
        json.dumps({"events": events[offset : offset + BATCH]}).encode()
        for offset in range(0, len(events), BATCH)
    ]


@dataclass
class _Shared:
    bodies: "queue.SimpleQueue[bytes]"
    accepted: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client_loop(port: int, key: str, shared: _Shared) -> None:
    client = Client(port, key, timeout=REQUEST_TIMEOUT)
    try:
        while True:
            try:
                body = shared.bodies.get_nowait()
            except queue.Empty:
                return
            began = time.perf_counter()
            status, answer = client.request("POST", "/usage/events", body)
            while status == 503:
                # Overloaded (a bounded wait ran out; nothing was stored): wait
                # Retry-After (1 s) and send the batch again, as a client should.
                with shared.lock:
                    shared.retries += 1
                time.sleep(RETRY_AFTER)
                status, answer = client.request("POST", "/usage/events", body)
            took = time.perf_counter() - began
            with shared.lock:
                shared.latencies.append(took)
                if status == 200:
                    shared.accepted += json.loads(answer)["data"]["accepted"]
                else:
                    shared.errors.append(f"{status} {answer[:200]!r}")
    except OSError as exc:
        with shared.lock:
            shared.errors.append(repr(exc))
    finally:
        client.close()


def http_ingest(port: int, key: str, bodies: list[bytes], clients: int) -> dict[str, Any]:
    """POST every body with `clients` concurrent keep-alive connections."""
    shared = _Shared(queue.SimpleQueue())
    for body in bodies:
        shared.bodies.put(body)
    threads = [
        threading.Thread(target=_client_loop, args=(port, key, shared), daemon=True)
        for _ in range(clients)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * len(bodies))
    elapsed = time.perf_counter() - began
    return {
        "clients": clients,
        "batches": len(bodies),
        "accepted": shared.accepted,
        "seconds": elapsed,
        "events_per_s": shared.accepted / elapsed if elapsed else 0.0,
        "latency_ms": summary_ms(shared.latencies),
        "errors": shared.errors[:5],
        "retries_after_503": shared.retries,
    }


def _row(driver: Driver, event: dict[str, Any], received: int) -> tuple[Any, ...]:
    """An event in usage_events' storage format (priced at a flat 1 credit)."""
    return (
        event["id"],
        driver.uuid(uuid.UUID(event["companyId"])),
        event["costKey"],
        to_micros(datetime.fromisoformat(event["occurredAt"])),
        int(Decimal(str(event["minutes"])) * 1_000_000),
        event.get("interviewId"),
        driver.flag(bool(event.get("isTest"))),
        event.get("agentFocus"),
        1_000_000,
        None,
        received,
        None,
    )


def storage_limit(url: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows/s of a bare executemany into an index-free copy of usage_events' columns."""
    database = Database(url)
    try:
        with database.transaction(write=True) as session:
            session.execute(text(f"DROP TABLE IF EXISTS {LIMIT_TABLE}"))
            session.execute(
                text(f"CREATE TABLE {LIMIT_TABLE} AS SELECT * FROM usage_events WHERE 1 = 0")
            )
            driver = Driver(session)
            received = to_micros(utcnow())
            rows = [_row(driver, event, received) for event in events]
            statement = driver.insert(LIMIT_TABLE, EVENT_COLUMNS)
        began = time.perf_counter()
        for offset in range(0, len(rows), BATCH):
            with database.transaction(write=True) as session:
                Driver(session).executemany(statement, rows[offset : offset + BATCH])
        elapsed = time.perf_counter() - began
        with database.transaction(write=True) as session:
            session.execute(text(f"DROP TABLE {LIMIT_TABLE}"))
    finally:
        database.dispose()
    return {"rows": len(rows), "seconds": elapsed, "rows_per_s": len(rows) / elapsed}
