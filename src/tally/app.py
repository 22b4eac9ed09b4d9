"""Builds the ASGI app: routers, the envelope's error handlers, lifespan."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tally import __version__
from tally.auth.api import router as keys_router
from tally.auth.ratelimit import RateLimits
from tally.companies.api import router as companies_router
from tally.core.envelope import (
    ANY_ROUTE,
    Envelope,
    EnvelopeResponse,
    error_responses,
    failure,
    success,
)
from tally.core.http import strict_query
from tally.core.limits import BodyLimit
from tally.db import failures
from tally.db.admission import WriteGate
from tally.db.engine import Database
from tally.errors import ServiceUnavailable, TallyError
from tally.observability.api import install as install_observability
from tally.observability.requestlog import log_internal_error
from tally.openapi import install_docs
from tally.plans.api import router as plans_router
from tally.pricing.api import router as pricing_router
from tally.reporting.api import router as reporting_router
from tally.settings import Settings, get_settings
from tally.usage import fold
from tally.usage.api import router as usage_router
from tally.web.api import router as web_router
from tally.webhooks.api import router as webhooks_router
from tally.webhooks.worker import Worker

log = logging.getLogger("tally")


class Health(BaseModel):
    status: Literal["ok"]


HTTP_CODES = {
    400: "VALIDATION_ERROR",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        errors.append({"field": ".".join(location) or "body", "message": message})
    return {"errors": errors}


def _allowed_methods(request: Request) -> str:
    """Every method of the path: Starlette names only those of its first route."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _strict_query(request: Request) -> None:
    """tally.core.http.strict_query, on the event loop.

    A few microseconds of work: as a synchronous dependency it would cost
    every request a hop to a worker thread and back.
    """
    strict_query(request)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TallyError)
    async def tally_error(_request: Request, exc: TallyError) -> EnvelopeResponse:
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServiceUnavailable) else None
        )
        return failure(exc.status, exc.code, exc.message, exc.details, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> EnvelopeResponse:
        details = _validation_details(exc)
        fields = ", ".join(error["field"] for error in details["errors"])
        return failure(400, "VALIDATION_ERROR", f"invalid request: {fields}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> EnvelopeResponse:
        code = HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = "no such path" if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return failure(exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> EnvelopeResponse:
        # A fallback: the observability middleware answers 500s first. Only the
        # type and place are logged: messages can carry SQL or parameters.
        request_id = getattr(request.state, "request_id", None)
        route = getattr(request.scope.get("route"), "path", None)
        log_internal_error(exc, {"requestId": request_id, "method": request.method, "route": route})
        return failure(500, "INTERNAL_ERROR", "internal error")

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> EnvelopeResponse:
        # A wait that ran out or an unreachable database: 503, nothing was done.
        busy = failures.unavailable(exc)
        if busy is None:
            return await unexpected(request, exc)
        log.warning("503 %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return await tally_error(request, busy)


def _start_webhook_worker(
    app: FastAPI, settings: Settings, db: Database
) -> "asyncio.Task[None] | None":
    """The in-process webhook delivery worker, unless TALLY_WEBHOOK_WORKER=0."""
    if not settings.webhook_worker:
        return None
    worker = Worker(db, settings)
    app.state.webhook_worker = worker
    return asyncio.create_task(worker.run(), name="webhook-worker")


def _start_folder(app: FastAPI, settings: Settings, db: Database) -> "asyncio.Task[None] | None":
    """The in-process folder of the usage tail, unless TALLY_USAGE_FOLDER=0."""
    if not settings.usage_folder or settings.usage_fold_inline:
        return None
    folder = fold.background(db, app.state.write_gate, settings)
    app.state.folder = folder
    return asyncio.create_task(folder.run(), name="usage-folder")


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    owned = database is None
    db = database or Database(settings.database_url, wait_seconds=settings.write_wait_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Worker threads for the synchronous routes: as many as the database
        # pool has connections (more would only wait for one), and each extra
        # thread costs memory (a malloc arena of its own).
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        delivering = _start_webhook_worker(_app, settings, db)
        folding = _start_folder(_app, settings, db)
        # Everything alive at start-up (modules, the app, the pools) moves out of
        # the collector's reach: a full collection then walks only what requests
        # allocate, instead of adding ~60 ms to one request in forty
        # (docs/series.md, "What the p99s measure").
        gc.freeze()
        yield
        if delivering is not None:
            delivering.cancel()
            with suppress(asyncio.CancelledError):
                await delivering
        if folding is not None:
            # A flag, not a cancel: a fold in progress finishes first.
            _app.state.folder.stop()
            await folding
        if owned:
            db.dispose()

    app = FastAPI(
        title="tally",
        version=__version__,
        description="Usage metering and usage reporting. Every answer is an envelope "
        "{success, data, error, timestamp}.",
        lifespan=lifespan,
        default_response_class=EnvelopeResponse,
        # Every route refuses unknown and repeated query parameters.
        dependencies=[Depends(_strict_query)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = db
    app.state.write_gate = WriteGate(
        per_company=not db.is_sqlite,
        wait_seconds=settings.write_wait_seconds,
        worker_threads=settings.worker_threads,
    )
    _install_error_handlers(app)
    # A request is matched against the routers in this order, each router's
    # routes one by one: the reads and the ingestion, the traffic, come first
    # (no two routers share a path, so the order decides nothing else).
    routers = (reporting_router, usage_router, companies_router, keys_router, pricing_router)
    for router in (*routers, plans_router, webhooks_router, web_router):
        app.include_router(router)

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=Envelope[Health],
        responses=error_responses(*ANY_ROUTE),
    )
    async def healthz() -> EnvelopeResponse:
        """Liveness: the process answers (whatever the load; see docs/concurrency.md)."""
        # On the event loop, with no database round trip: no worker thread,
        # no connection, no lock can delay it. Whether the database answers
        # is a readiness question (/readyz), not a reason to restart the process.
        return success(Health(status="ok"))

    install_docs(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RateLimits, settings=settings)
    install_observability(app)  # last: its middleware wraps every other one
    return app
