"""Routes: /metrics (Prometheus text format) and /readyz."""

import hmac
from typing import Literal

import anyio
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.responses import Response

from tally.core.envelope import (
    ANY_ROUTE,
    Envelope,
    EnvelopeResponse,
    error_responses,
    failure,
    success,
)
from tally.observability import metrics, readiness
from tally.observability.middleware import Observability

router = APIRouter(tags=["health"])
READY_RETRY_AFTER = "5"


class Ready(BaseModel):
    status: Literal["ready"]


def _authorized(request: Request, token: str | None) -> bool:
    if not token:
        return True
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode("latin-1"), f"Bearer {token}".encode())


@router.get("/metrics", include_in_schema=False)
def get_metrics(request: Request) -> Response:
    """Prometheus metrics of every process serving this app."""
    if not _authorized(request, request.app.state.settings.metrics_token):
        return failure(
            401,
            "INVALID_API_KEY",
            "missing or wrong metrics token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@router.get("/readyz", response_model=Envelope[Ready], responses=error_responses(*ANY_ROUTE))
async def readyz(request: Request) -> EnvelopeResponse:
    """Readiness: the database answers in time and its schema is at the latest migration."""
    state = request.app.state
    timeout = state.settings.ready_timeout_seconds
    if getattr(state, "ready_limiter", None) is None:
        # Its own threads: a probe neither waits for nor takes a request's thread.
        state.ready_limiter = anyio.CapacityLimiter(2)
    problem: str | None
    try:
        with anyio.fail_after(timeout):
            problem = await to_thread.run_sync(
                readiness.problem,
                state.database,
                limiter=state.ready_limiter,
                abandon_on_cancel=True,
            )
    except TimeoutError:
        problem = f"the database did not answer within {timeout:g} s"
    if problem is not None:
        return failure(
            503, "SERVICE_UNAVAILABLE", problem, headers={"Retry-After": READY_RETRY_AFTER}
        )
    return success(Ready(status="ready"))


def install(app: FastAPI) -> None:
    """Add /metrics, /readyz and the outermost middleware (call after every other middleware)."""
    app.include_router(router)
    app.add_middleware(Observability)
