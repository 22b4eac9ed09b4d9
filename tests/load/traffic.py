"""Concurrent writers, readers and a /healthz probe against a real server.

The batches are built up front, so the test knows exactly what was sent and
computes the expected totals itself (a plain-Python reference): each company's
events, minutes (exact decimals) and interviews, counting every id once.
Every writer shares duplicate ids with the other writers of its company.
"""

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2
import simplejson

REQUEST_TIMEOUT = 30.0
HEALTH_LIMIT = 1.0
BATCH = 500
SHARED = 50
WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-07-01T00:00:00Z"}
# The window by day with no company's own buckets: the top-level buckets summed
# over the scope as the totals are read (tally.reporting.service.scope_series).
SCOPE_SERIES = WINDOW | {"granularity": "day", "companySeries": "none"}
# What readers ask for, in turn.
READS = (("/billing/usage", WINDOW), ("/billing/usage/series", SCOPE_SERIES))

Batch = list[dict[str, Any]]


def build_batches(companies: list[str], writers: int, per_writer: int, seed: int) -> list[Batch]:
    """writers x per_writer batches of BATCH events; writer w writes for company w mod n.

    Each batch carries SHARED ids drawn from its company's pool of shared events
    (the same payload every time), so concurrent batches hold duplicates.
    """
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def one(company: str, event_id: str, r: random.Random) -> dict[str, Any]:
        at = base + timedelta(seconds=r.randrange(180 * 86400))
        return {
            "id": event_id,
            "companyId": company,
            "costKey": r.choice(["interview_minutes", "sourcing_enrichment"]),
            "occurredAt": at.isoformat().replace("+00:00", "Z"),
            "minutes": Decimal(r.randrange(0, 100_000)) / 1000,
            "interviewId": f"iv-{company[:8]}-{r.randrange(200)}",
        }

    pools = {
        company: [one(company, f"shared-{company[:8]}-{n}", random.Random(n)) for n in range(200)]
        for company in companies
    }
    batches = []
    for writer in range(writers):
        company = companies[writer % len(companies)]
        for number in range(per_writer):
            own = [one(company, f"w{writer}-b{number}-{n}", rng) for n in range(BATCH - SHARED)]
            shared = rng.sample(pools[company], SHARED)
            batch = own + shared
            rng.shuffle(batch)
            batches.append(batch)
    return batches


def expected_totals(batches: list[Batch]) -> dict[str, tuple[int, Decimal, int]]:
    """Per company: (events, minutes, interviews), every event id counted once."""
    unique: dict[str, dict[str, Any]] = {}
    for batch in batches:
        for item in batch:
            unique[item["id"]] = item
    events: dict[str, int] = defaultdict(int)
    minutes: dict[str, Decimal] = defaultdict(Decimal)
    interviews: dict[str, set[str]] = defaultdict(set)
    for item in unique.values():
        events[item["companyId"]] += 1
        minutes[item["companyId"]] += item["minutes"]
        interviews[item["companyId"]].add(item["interviewId"])
    return {c: (events[c], minutes[c], len(interviews[c])) for c in events}


def reported_totals(base_url: str, key: str) -> dict[str, tuple[int, Decimal, int]]:
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        response = client.get("/billing/usage", params=WINDOW, headers=auth(key))
    assert response.status_code == 200, response.text
    data = simplejson.loads(response.text, use_decimal=True)["data"]
    return {
        c["companyId"]: (
            sum(entry["events"] for entry in c["breakdownByCostKey"]),
            Decimal(c["totalMinutesUsed"]),
            c["totalInterviews"],
        )
        for c in data["companies"]
        if c["breakdownByCostKey"]
    }


def scope_totals(base_url: str, key: str) -> tuple[int, Decimal, int]:
    """(events, minutes, interviews) of every company, from the top-level buckets
    of the series that lists none."""
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        response = client.get("/billing/usage/series", params=SCOPE_SERIES, headers=auth(key))
    assert response.status_code == 200, response.text
    buckets = simplejson.loads(response.text, use_decimal=True)["data"]["buckets"]
    return (
        sum(entry["events"] for bucket in buckets for entry in bucket["breakdownByCostKey"]),
        sum((Decimal(bucket["totalMinutesUsed"]) for bucket in buckets), Decimal(0)),
        sum(bucket["totalInterviews"] for bucket in buckets),
    )


def summed(totals: dict[str, tuple[int, Decimal, int]]) -> tuple[int, Decimal, int]:
    """expected_totals over every company."""
    return (
        sum(events for events, _, _ in totals.values()),
        sum((minutes for _, minutes, _ in totals.values()), Decimal(0)),
        sum(interviews for _, _, interviews in totals.values()),
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Record:
    """What the clients saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: set[int] = field(default_factory=set)
    unanswered: set[int] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    slowest: float = 0.0
    health_slowest: float = 0.0
    health_probes: int = 0
    reads: int = 0
    problems: list[str] = field(default_factory=list)

    def saw(self, status: int, took: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.slowest = max(self.slowest, took)

    def summary(self) -> str:
        return (
            f"statuses {dict(self.statuses)}, slowest {self.slowest:.2f} s, reads {self.reads},"
            f" /healthz {self.health_probes} probes, slowest {self.health_slowest:.3f} s"
        )

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


class Gone(Exception):
    """The server went away (killed): the request got no answer."""


def send(
    client: httpx2.Client, record: Record, method: str, path: str, **kwargs: Any
) -> httpx2.Response:
    """One request, retried after 503 + Retry-After; any other answer is returned."""
    while True:
        began = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)
        except httpx2.TimeoutException:
            record.problem(f"{method} {path}: no answer within {REQUEST_TIMEOUT} s")
            raise
        except httpx2.TransportError as exc:
            raise Gone from exc
        took = time.monotonic() - began
        record.saw(response.status_code, took)
        if took > REQUEST_TIMEOUT:
            record.problem(f"{method} {path} took {took:.1f} s")
        if response.status_code != 503:
            return response
        retry_after = response.headers.get("retry-after")
        if retry_after is None or response.json()["error"]["code"] != "SERVICE_UNAVAILABLE":
            record.problem(f"503 without Retry-After or envelope: {response.text}")
            return response
        time.sleep(float(retry_after) * random.uniform(0.5, 1.0))


def writer(base_url: str, key: str, bodies: list[str], mine: list[int], record: Record) -> None:
    """Send these batches one after another; stop at the first one the server never answers."""
    headers = auth(key) | {"Content-Type": "application/json"}
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        for index in mine:
            body = bodies[index]
            try:
                response = send(
                    client, record, "POST", "/usage/events", content=body, headers=headers
                )
            except (Gone, httpx2.TimeoutException):
                with record.lock:
                    record.unanswered.update(i for i in mine if i not in record.answered)
                return
            if response.status_code != 200:
                record.problem(f"batch {index}: {response.status_code} {response.text[:300]}")
            with record.lock:
                record.answered.add(index)


def reader(base_url: str, key: str, record: Record, stop: threading.Event) -> None:
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        turn = 0
        while not stop.is_set():
            path, params = READS[turn % len(READS)]
            turn += 1
            try:
                response = send(client, record, "GET", path, params=params, headers=auth(key))
            except (Gone, httpx2.TimeoutException):
                return
            if response.status_code != 200:
                record.problem(f"read: {response.status_code} {response.text[:300]}")
            with record.lock:
                record.reads += 1
            time.sleep(0.05)


def health_probe(base_url: str, record: Record, stop: threading.Event) -> None:
    """GET /healthz every 100 ms; each must answer 200 within a second."""
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=5) as client:
        while not stop.is_set():
            began = time.monotonic()
            try:
                status = client.get("/healthz").status_code
            except httpx2.TimeoutException:
                record.problem("/healthz: no answer within 5 s")
                continue
            except httpx2.TransportError:
                return
            took = time.monotonic() - began
            with record.lock:
                record.health_probes += 1
                record.health_slowest = max(record.health_slowest, took)
            if status != 200 or took > HEALTH_LIMIT:
                record.problem(f"/healthz: {status} after {took:.2f} s")
            time.sleep(0.1)


def run_load(
    base_url: str,
    key: str,
    batches: list[Batch],
    writers: int,
    readers: int = 2,
    on_progress: Callable[[Record], None] | None = None,
) -> Record:
    """All writers, readers and the probe at once; returns when every writer is done."""
    record = Record()
    stop = threading.Event()
    shares = [list(range(w, len(batches), writers)) for w in range(writers)]
    # Encoded up front: the client's own CPU work must not delay the probe.
    bodies = [simplejson.dumps({"events": batch}, use_decimal=True) for batch in batches]
    threads = [
        threading.Thread(target=writer, args=(base_url, key, bodies, share, record))
        for share in shares
    ]
    others = [
        threading.Thread(target=reader, args=(base_url, key, record, stop)) for _ in range(readers)
    ] + [threading.Thread(target=health_probe, args=(base_url, record, stop))]
    for thread in threads + others:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        if on_progress is not None:
            on_progress(record)
        time.sleep(0.05)
    stop.set()
    for thread in threads + others:
        thread.join(timeout=60)
    return record


def create_companies(base_url: str, key: str, count: int) -> list[str]:
    """Companies billed in minutes, made through the admin API."""
    ids = []
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        for n in range(count):
            body = {"name": f"Load {n}", "billingSystem": "minutes"}
            response = client.post("/admin/companies", json=body, headers=auth(key))
            assert response.status_code == 201, response.text
            ids.append(str(response.json()["data"]["id"]))
    return ids
