"""Q1-Q4: random windows, and their latency in-process and over HTTP.

Windows have second-precision edges: a random start within the history and
a fixed length per query. In-process, one query is what a request does
after authentication: a read transaction, visible_companies, usage_report.
Over HTTP it is a GET /billing/usage on a keep-alive connection, timed
until the whole body is read.
"""

import http.client
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from bench.dataset import HISTORY_DAYS
from bench.load import Meta
from tally.auth.principal import Principal
from tally.auth.scopes import KeyKind, Scope
from tally.auth.tenancy import visible_companies
from tally.db.engine import Database
from tally.reporting.usage import usage_report

Window = tuple[datetime, datetime]
WARMUP = 3


@dataclass(frozen=True)
class Query:
    name: str
    kind: KeyKind
    days: int
    label: str


QUERIES = (
    Query("Q1", KeyKind.COMPANY, 30, "company key, 30 days"),
    Query("Q2", KeyKind.COMPANY, 365, "company key, 365 days"),
    Query("Q3", KeyKind.ATS, 90, "ATS key over 50 companies, 90 days"),
    Query("Q4", KeyKind.ATS, 365, "ATS key over 500 companies, 365 days"),
)


def history_start(meta: Meta) -> datetime:
    first = meta.anchor - timedelta(days=HISTORY_DAYS)
    return first.replace(hour=0, minute=0, second=0, microsecond=0)


def windows(meta: Meta, query: Query, count: int, seed: int) -> list[Window]:
    """`count` windows of the query's length, starting anywhere in the history."""
    rng = random.Random(f"{seed}-{query.name}")
    low = history_start(meta)
    length = timedelta(days=query.days)
    span = int((meta.anchor - length - low).total_seconds())
    starts = [low + timedelta(seconds=rng.randrange(span + 1)) for _ in range(count)]
    return [(start, start + length) for start in starts]


def principal(meta: Meta, query: Query) -> Principal:
    """The caller a key of this kind resolves to (no key row needed in-process)."""
    owner = meta.principal_owner(query.kind, query.name)
    return Principal(
        key_id=uuid.uuid4(),
        kind=query.kind,
        scopes=frozenset({Scope.READ_BILLING}),
        company_id=owner if query.kind is KeyKind.COMPANY else None,
        ats_integration_id=owner if query.kind is KeyKind.ATS else None,
    )


def report_in_process(database: Database, caller: Principal, window: Window) -> str:
    """What GET /billing/usage computes after authentication: its `data`, as JSON text."""
    with database.transaction(write=False) as session:
        companies = visible_companies(session, caller, None)
        return usage_report(session, companies, *window)


def _timed(call: Callable[[Window], object], items: list[Window]) -> list[float]:
    for window in items[:WARMUP]:
        call(window)
    timings = []
    for window in items:
        began = time.perf_counter()
        call(window)
        timings.append(time.perf_counter() - began)
    return timings


def in_process(database: Database, caller: Principal, items: list[Window]) -> list[float]:
    """Seconds per window (after a few warm-up queries, not counted)."""
    return _timed(lambda window: report_in_process(database, caller, window), items)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def usage_path(window: Window) -> str:
    query = urlencode({"start": _instant(window[0]), "end": _instant(window[1])})
    return f"/billing/usage?{query}"


class _NoDelayConnection(http.client.HTTPConnection):
    """Nagle off on the client side too, so only the server can add a delay."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Client:
    """One keep-alive HTTP/1.1 connection to the server under test."""

    def __init__(self, port: int, key: str | None = None, timeout: float = 60.0) -> None:
        self.connection = _NoDelayConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def get_ok(self, path: str) -> bytes:
        status, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return body

    def close(self) -> None:
        self.connection.close()


def over_http(port: int, key: str, items: list[Window]) -> list[float]:
    """Seconds per GET /billing/usage, request sent to body read."""
    client = Client(port, key)
    try:
        return _timed(lambda window: client.get_ok(usage_path(window)), items)
    finally:
        client.close()
