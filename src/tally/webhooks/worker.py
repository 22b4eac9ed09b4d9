"""The delivery worker: claims due deliveries, sends them, records the outcome.

Every serving process runs one as an asyncio task (started in the app's
lifespan unless TALLY_WEBHOOK_WORKER=0), and `tally worker` runs the same loop
on its own. All database and network work happens in one dedicated thread, so
the event loop never blocks and the request threads are not taken. Delivery
is at least once: a claim is a lease (the row's next attempt moved past the
send's timeout); a worker that dies mid-send leaves the row to be claimed
again when the lease runs out, and the receiver sees the same webhook-id.
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2
from anyio import CapacityLimiter, to_thread

from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.settings import Settings
from tally.webhooks import repository, signing
from tally.webhooks.repository import Claimed
from tally.webhooks.targets import TargetRefused, target_of

log = logging.getLogger("tally.webhooks")
# The most deliveries one pass sends before it lets the loop look around.
PASS_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Deliverer:
    """One worker's sending, synchronous (it runs in its own thread)."""

    def __init__(
        self, database: Database, settings: Settings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.client = httpx2.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
        )

    def close(self) -> None:
        self.client.close()

    def deliver_due(self) -> int:
        """Send every delivery due when the pass starts (up to PASS_LIMIT); how many were tried.

        A delivery whose attempt fails in this pass is due again at the earliest
        in the next one, however short its backoff.
        """
        started = self.clock()
        with self.database.transaction(write=False) as session:
            if not repository.any_due(session, started):
                return 0
        attempted = 0
        while attempted < PASS_LIMIT:
            claimed = self._claim(started)
            if claimed is None:
                break
            self._attempt(claimed)
            attempted += 1
        return attempted

    def _claim(self, due_by: datetime) -> Claimed | None:
        lease = self.clock() + timedelta(seconds=2 * self.settings.webhook_timeout_seconds + 30)
        with self.database.transaction(write=True) as session:
            return repository.claim_one(session, due_by, lease)

    def _attempt(self, claimed: Claimed) -> None:
        if claimed.endpoint_removed:
            outcome = Outcome(None, "endpoint removed")
            values: dict[str, Any] = {"status": "failed", "next_attempt_at": None}
        else:
            outcome = self._send(claimed)
            values = self._next(claimed, outcome)
        values |= {"last_status_code": outcome.status_code, "last_error": outcome.error}
        with self.database.transaction(write=True) as session:
            repository.record_attempt(session, claimed.delivery_id, values)

    def _send(self, claimed: Claimed) -> Outcome:
        try:
            target = target_of(claimed.url, self.settings.webhook_allow_private)
        except TargetRefused as exc:
            return Outcome(None, f"refused: {exc}")
        body = claimed.payload
        headers = signing.headers(claimed.secret, str(claimed.delivery_id), self.clock(), body)
        headers["host"] = target.host_header
        extensions = {"sni_hostname": target.host} if target.url.startswith("https:") else {}
        try:
            # Streamed and never read: a receiver's answer body is not our business.
            with self.client.stream(
                "POST", target.url, content=body.encode(), headers=headers, extensions=extensions
            ) as response:
                return Outcome(response.status_code, None if response.is_success else "status")
        except httpx2.TimeoutException:
            return Outcome(None, "timeout")
        except httpx2.HTTPError as exc:
            return Outcome(None, f"connection failed ({type(exc).__name__})")

    def _next(self, claimed: Claimed, outcome: Outcome) -> dict[str, Any]:
        now = self.clock()
        if outcome.ok:
            return {"status": "delivered", "next_attempt_at": None, "delivered_at": now}
        attempts = claimed.attempts + 1
        backoff = self.settings.webhook_backoff_seconds
        log.warning(
            "webhook delivery %s attempt %d failed: %s",
            claimed.delivery_id,
            attempts,
            outcome.error if outcome.status_code is None else f"status {outcome.status_code}",
        )
        if attempts > len(backoff):
            return {"status": "failed", "next_attempt_at": None}
        return {"next_attempt_at": now + timedelta(seconds=backoff[attempts - 1])}


class Worker:
    """The asyncio side: runs passes in a thread of its own, sleeps when idle."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.deliverer = Deliverer(database, settings)
        self.poll = settings.webhook_poll_seconds
        self._limiter = CapacityLimiter(1)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Look for due deliveries now (callable from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                attempted = await self._pass()
                if attempted == 0:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
                    self._wake.clear()
        finally:
            self.deliverer.close()

    async def _pass(self) -> int:
        try:
            return await to_thread.run_sync(
                self.deliverer.deliver_due, limiter=self._limiter, abandon_on_cancel=True
            )
        except Exception as exc:
            # A database that is down for a moment must not end the worker.
            log.error("webhook worker pass failed: %s", type(exc).__name__)
            await asyncio.sleep(self.poll)
            return 0


def run_forever(database: Database, settings: Settings, stop: threading.Event) -> None:
    """`tally worker`: the same passes, in the foreground, until `stop` is set."""
    deliverer = Deliverer(database, settings)
    try:
        while not stop.is_set():
            try:
                attempted = deliverer.deliver_due()
            except Exception as exc:
                log.error("webhook worker pass failed: %s", type(exc).__name__)
                attempted = 0
            if attempted == 0:
                stop.wait(settings.webhook_poll_seconds)
    finally:
        deliverer.close()
