"""Request dependencies: the transaction, the database, and the authenticated caller."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tally.auth import ratelimit
from tally.auth import service as auth_service
from tally.auth.principal import Principal
from tally.auth.repository import touch_last_used
from tally.auth.scopes import Scope
from tally.core.instants import utcnow
from tally.db.admission import WriteGate
from tally.db.engine import Database
from tally.errors import InsufficientScope, InvalidApiKey
from tally.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_write_gate(request: Request) -> WriteGate:
    gate: WriteGate = request.app.state.write_gate
    return gate


@asynccontextmanager
async def _no_turn() -> AsyncIterator[None]:
    yield


async def write_transaction(
    request: Request, companies: Iterable[uuid.UUID], work: Callable[[Session], T]
) -> T:
    """Run `work` in one writing transaction, waiting on the loop for its turn.

    The write turn of the companies (per company on PostgreSQL, the one turn
    on SQLite), a writer slot and a worker thread are waited for here, on the
    event loop, within TALLY_WRITE_WAIT_SECONDS; then the transaction runs
    start to finish (lock, write, COMMIT) in that one thread. Past the
    deadline: 503 SERVICE_UNAVAILABLE, nothing done.
    """
    gate = get_write_gate(request)
    database = get_database(request)
    deadline = gate.deadline()
    async with gate.turn(companies, deadline):
        return await gate.run(
            deadline, lambda: database.write(work, lock_timeout=gate.left(deadline))
        )


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, else rolled back.

    Opening the session does no I/O (its transaction begins with the first
    statement, in the route's worker thread), so it costs no thread hop. A
    writing transaction then commits on the event loop: COMMIT waits for no
    lock, and the request holding the write lock must never need a second
    worker thread to release it (docs/concurrency.md). On SQLite a writing
    request first takes the process's write turn, on the loop.
    """
    if request.method in READ_METHODS:
        session = get_database(request).session(write=False)
        try:
            yield session
        finally:
            # Ending a read-only transaction is cheap enough for the event loop.
            session.close()
        return
    gate = get_write_gate(request)
    # Only SQLite's single writer needs a turn for these (administration) writes.
    async with gate.turn((), gate.deadline()) if not gate.per_company else _no_turn():
        session = get_database(request).session(write=True)
        try:
            yield session
            session.commit()
        finally:
            session.close()


DbSession = Annotated[Session, Depends(get_session, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _authenticate(request: Request) -> Principal:
    """Resolve the key and its companies in one statement of its own, on the event loop.

    Out of the request's transaction, a writing request takes the database's
    write lock only when it starts writing, not while its body is checked.
    On the loop (one indexed lookup, on the loop's own connection, without
    an ORM session), it saves a hop to a worker thread, which costs more
    than the lookup itself; the companies read with the key spare a read
    its own lookup of them (tally.auth.tenancy). Rate limits come first (an
    address that failed too often is not even looked up) and refuse a
    request before it has any effect (tally.auth.ratelimit).
    """
    now = utcnow()
    client_ip = request.client.host if request.client else None
    address = client_ip or "unknown"
    database = get_database(request)
    limiter = ratelimit.limiter_of(request.scope)
    ratelimit.enforce(request.scope, await limiter.admit_address(address))
    try:
        with database.loop_engine.connect() as connection:
            principal, key = auth_service.authenticate(connection, _bearer(request), client_ip, now)
    except InvalidApiKey:
        ratelimit.enforce(request.scope, await limiter.count_failure(address))
        raise
    ratelimit.enforce(request.scope, await limiter.admit_key(key))
    if auth_service.needs_touch(key, now, get_settings_dep(request).last_used_resolution_seconds):
        await run_in_threadpool(_touch, database, key.id, now)
    return principal


def _touch(database: Database, key_id: uuid.UUID, now: datetime) -> None:
    # Failing to record lastUsedAt (say, a busy database) never fails the request.
    try:
        with database.transaction(write=True) as session:
            touch_last_used(session, key_id, now)
    except SQLAlchemyError:
        return


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and demands one scope."""

    async def dependency(principal: Annotated[Principal, Depends(_authenticate)]) -> Principal:
        if scope not in principal.scopes:
            raise InsufficientScope(
                f"this key lacks the {scope.value} scope",
                details={"requiredScope": scope.value},
            )
        return principal

    return dependency


UsageReader = Annotated[Principal, Depends(require_scope(Scope.READ_BILLING))]
UsageWriter = Annotated[Principal, Depends(require_scope(Scope.WRITE_USAGE))]
Admin = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
