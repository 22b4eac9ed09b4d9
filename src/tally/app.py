"""Builds the ASGI app: routers, the envelope's error handlers, lifespan."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from tally import __version__
from tally.auth.api import router as keys_router
from tally.companies.api import router as companies_router
from tally.core.envelope import EnvelopeResponse, failure, success
from tally.core.limits import BodyLimit
from tally.db.engine import Database
from tally.errors import TallyError
from tally.plans.api import router as plans_router
from tally.pricing.api import router as pricing_router
from tally.reporting.api import router as reporting_router
from tally.settings import Settings, get_settings
from tally.usage.api import router as usage_router
from tally.usage.schemas import EventBatchIn
from tally.web.api import router as web_router
from tally.webhooks.api import router as webhooks_router
from tally.webhooks.worker import Worker

log = logging.getLogger("tally")

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


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TallyError)
    async def tally_error(_request: Request, exc: TallyError) -> EnvelopeResponse:
        return failure(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> EnvelopeResponse:
        details = _validation_details(exc)
        fields = ", ".join(error["field"] for error in details["errors"])
        return failure(400, "VALIDATION_ERROR", f"invalid request: {fields}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> EnvelopeResponse:
        code = HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = "no such path" if exc.status_code == 404 else str(exc.detail)
        return failure(exc.status_code, code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> EnvelopeResponse:
        # Only the type and place: messages can carry SQL or parameters.
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
        log.error(
            "internal error %s at %s on %s %s",
            type(exc).__name__,
            where,
            request.method,
            request.url.path,
        )
        return failure(500, "INTERNAL_ERROR", "internal error")


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, routes=app.routes, description=app.description
    )
    # The event batch body is parsed by hand (exact decimals, per-index
    # errors); publish its models so the document still describes it.
    models = EventBatchIn.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(models.pop("$defs", {}))
    components["EventBatchIn"] = models
    body = {"$ref": "#/components/schemas/EventBatchIn"}
    content = schema["paths"]["/usage/events"]["post"]["requestBody"]["content"]
    content["application/json"]["schema"] = body
    app.openapi_schema = schema
    return schema


def _start_webhook_worker(
    app: FastAPI, settings: Settings, db: Database
) -> "asyncio.Task[None] | None":
    """The in-process webhook delivery worker, unless TALLY_WEBHOOK_WORKER=0."""
    if not settings.webhook_worker:
        return None
    worker = Worker(db, settings)
    app.state.webhook_worker = worker
    return asyncio.create_task(worker.run(), name="webhook-worker")


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    owned = database is None
    db = database or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Worker threads for the synchronous routes: as many as the database
        # pool has connections (more would only wait for one), and each extra
        # thread costs memory (a malloc arena of its own).
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        delivering = _start_webhook_worker(_app, settings, db)
        yield
        if delivering is not None:
            delivering.cancel()
            with suppress(asyncio.CancelledError):
                await delivering
        if owned:
            db.dispose()

    app = FastAPI(
        title="tally",
        version=__version__,
        description="Usage metering and usage reporting. Every answer is an envelope "
        "{success, data, error, timestamp}.",
        lifespan=lifespan,
        default_response_class=EnvelopeResponse,
    )
    app.state.settings = settings
    app.state.database = db
    _install_error_handlers(app)
    for router in (usage_router, companies_router, keys_router, pricing_router):
        app.include_router(router)
    app.include_router(plans_router)
    app.include_router(webhooks_router)
    app.include_router(reporting_router)
    app.include_router(web_router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> EnvelopeResponse:
        """Liveness and database reachability."""
        with db.transaction(write=False) as session:
            session.execute(text("SELECT 1"))
        return success({"status": "ok"})

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
