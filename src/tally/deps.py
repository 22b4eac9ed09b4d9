"""Request dependencies: the transaction, the database, and the authenticated caller."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated

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
from tally.db.engine import Database
from tally.errors import InsufficientScope, InvalidApiKey
from tally.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, else rolled back.

    Opening the session does no I/O (its transaction begins with the first
    statement, in the route's worker thread), so it costs no thread hop; a
    writing transaction commits in a worker thread, before the answer goes out.
    """
    write = request.method not in READ_METHODS
    session = get_database(request).session(write=write)
    try:
        yield session
        if write:
            await run_in_threadpool(session.commit)
    finally:
        if write:
            await run_in_threadpool(session.close)
        else:
            # Ending a read-only transaction is cheap enough for the event loop.
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
    """Resolve the key in a short read transaction of its own, on the event loop.

    Out of the request's transaction, a writing request takes the database's
    write lock only when it starts writing, not while its body is checked.
    On the loop (one indexed lookup), it saves a hop to a worker thread,
    which costs more than the lookup itself. Rate limits come first (an
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
        with database.loop_read() as session:
            principal, key = auth_service.authenticate(session, _bearer(request), client_ip, now)
            stale = auth_service.needs_touch(
                key, now, get_settings_dep(request).last_used_resolution_seconds
            )
    except InvalidApiKey:
        ratelimit.enforce(request.scope, await limiter.count_failure(address))
        raise
    ratelimit.enforce(request.scope, await limiter.admit_key(key))
    if stale:
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
