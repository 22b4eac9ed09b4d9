"""The outermost middleware: request id, timing, metrics, the log line, and 500s.

It wraps everything tally adds to the app, so each request gets exactly one
log line and one count whatever answers it. An exception that escapes the
app stops here: it is logged as one line (type and place, no message, no
traceback) and answered with the 500 envelope; it is not re-raised, so
Starlette's ServerErrorMiddleware and uvicorn never print a traceback. A
client that went away before its answer is not an error: one debug line,
status 499 in the metrics (nginx's convention for it).
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally.core.envelope import failure
from tally.observability import metrics
from tally.observability.requestlog import (
    REQUEST_ID_HEADER,
    key_prefix,
    log_internal_error,
    log_request,
    request_id_from,
)

# Set in the scope by the server's protocol when the connection limit is
# exceeded (tally.server): answered here, so that answer is an envelope too.
OVERLOADED_SCOPE_KEY = "tally.overloaded"
CLIENT_CLOSED = 499
log = logging.getLogger("tally.request")


@dataclass
class _Exchange:
    status: int | None = None
    started: bool = False
    client_gone: bool = False


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class Observability:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_id_from(headers.get(b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        exchange = _Exchange()

        async def receive_watching() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not exchange.started:
                exchange.client_gone = True
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.started = True
                exchange.status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        fields: dict[str, Any] = {
            "requestId": request_id,
            "method": metrics.method_label(scope["method"]),
            "client": _client(scope),
            "keyPrefix": key_prefix(headers.get(b"authorization")),
        }
        try:
            if scope.get(OVERLOADED_SCOPE_KEY):
                await _overloaded(scope, receive_watching, send_with_id)
            else:
                await self.app(scope, receive_watching, send_with_id)
        except Exception as exc:
            fields["route"] = _route(scope)
            if exchange.client_gone or isinstance(exc, ClientDisconnect):
                exchange.status = CLIENT_CLOSED
            else:
                log_internal_error(exc, fields)
                if not exchange.started:
                    await failure(500, "INTERNAL_ERROR", "internal error")(
                        scope, receive, send_with_id
                    )
                exchange.status = 500
        finally:
            self._finish(scope, fields, exchange, time.perf_counter() - started_at)

    @staticmethod
    def _finish(scope: Scope, fields: dict[str, Any], exchange: _Exchange, took: float) -> None:
        route = _route(scope)
        # Gone before its answer started: whatever the app then did, nobody got it.
        status = CLIENT_CLOSED if exchange.client_gone else exchange.status or CLIENT_CLOSED
        metrics.observe_request(scope["method"], route, status, took)
        if status == CLIENT_CLOSED:
            metrics.observe_disconnect()
            log.debug("client disconnected", extra={"fields": fields | {"route": route}})
            return
        log_request(
            fields | {"route": route, "status": status, "durationMs": round(took * 1000, 3)}
        )


async def _overloaded(scope: Scope, receive: Receive, send: Send) -> None:
    response = failure(
        503,
        "SERVICE_UNAVAILABLE",
        "too many connections; retry shortly",
        headers={"Retry-After": "1"},
    )
    await response(scope, receive, send)
