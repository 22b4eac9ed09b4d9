"""Admission of writers, on the event loop: waiting costs no thread.

A writing request first waits here, as a coroutine, until it may write:

- on PostgreSQL, for the in-process turn of each company it writes (asyncio
  locks taken in one order, so two batches never wait for each other in a
  cycle); batches of different companies go ahead in parallel, and the
  companies' rows, locked in the transaction, order writers across
  processes and machines;
- on SQLite, for the process's one writer turn (SQLite has one writer).

Then for a writer slot (writers leave at least one worker thread to readers
when there are two or more) and a worker thread. Only then does its
transaction begin, in that one thread, to COMMIT (`Database.write`): a
request never holds a thread while it waits for another request, and the
request holding a lock never needs anything more to release it. Every wait
here shares one deadline; past it the request gets 503 and nothing was done.
"""

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

from anyio import CapacityLimiter, to_thread

from tally.errors import ServiceUnavailable

T = TypeVar("T")
_EVERYONE = uuid.UUID(int=0)
# Batches decoded at once per process (one decoding while another writes).
DECODERS = 2


class _KeyedLocks:
    """One asyncio lock per key, alive only while someone holds or wants it."""

    def __init__(self) -> None:
        self._locks: dict[uuid.UUID, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: uuid.UUID) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class WriteGate:
    """The admission of one process's writers (see the module docstring)."""

    def __init__(self, *, per_company: bool, wait_seconds: float, worker_threads: int) -> None:
        self.per_company = per_company
        self.wait_seconds = wait_seconds
        self._turns = _KeyedLocks()
        self._slots = asyncio.Semaphore(max(1, worker_threads - 1))
        self._decoders = asyncio.Semaphore(DECODERS)
        self._unbounded: CapacityLimiter | None = None

    def deadline(self) -> float:
        return time.monotonic() + self.wait_seconds

    @asynccontextmanager
    async def turn(self, companies: Iterable[uuid.UUID], deadline: float) -> AsyncIterator[None]:
        """The write turn of these companies (of everyone on SQLite) until the block ends."""
        keys = sorted(set(companies)) if self.per_company else [_EVERYONE]
        async with AsyncExitStack() as stack:
            for key in keys:
                await _within(deadline, stack.enter_async_context(self._turns.hold(key)))
            yield

    async def run(self, deadline: float, work: Callable[[], T]) -> T:
        """Run `work` in a worker thread once a writer slot and a thread are free."""
        return await self._in_thread(self._slots, deadline, work)

    async def decode(self, work: Callable[[], T]) -> T:
        """Run CPU-bound `work` (decoding a batch) in a worker thread, a few at a time.

        Decoding is pure Python: more of it at once in one process only makes
        the threads take turns at the GIL, and slows down the writer holding
        the database's lock. Queued batches wait here, on the loop.
        """
        return await self._in_thread(self._decoders, self.deadline(), work)

    async def _in_thread(
        self, slots: asyncio.Semaphore, deadline: float, work: Callable[[], T]
    ) -> T:
        await _within(deadline, slots.acquire())
        try:
            threads = to_thread.current_default_thread_limiter()
            borrower = object()
            await _within(deadline, threads.acquire_on_behalf_of(borrower))
            try:
                # The thread's token is held above, with the deadline; the
                # call itself must not wait for a second one.
                if self._unbounded is None:
                    self._unbounded = CapacityLimiter(math.inf)
                return await to_thread.run_sync(work, limiter=self._unbounded)
            finally:
                threads.release_on_behalf_of(borrower)
        finally:
            slots.release()

    def left(self, deadline: float) -> float:
        """Seconds left before the deadline (at least a millisecond)."""
        return max(0.001, deadline - time.monotonic())


async def _within(deadline: float, waiting: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout_at(_loop_time(deadline)):
            return await waiting
    except TimeoutError as exc:
        raise ServiceUnavailable("too many concurrent writes; nothing was done") from exc


def _loop_time(deadline: float) -> float:
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())
