"""Response headers set outside the route: a pure ASGI middleware and Cache-Control helpers.

Routes build their Response objects themselves and errors are answered by
handlers, so a header every answer of a request must carry (the rate-limit
headers, decided during authentication) cannot be added in one route. A
dependency records it with `add_response_headers(scope, ...)` and
`ResponseHeaders` writes it onto whatever answer goes out, success or error.
"""

from collections.abc import Mapping, MutableMapping
from typing import Any, TypeVar

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Where the headers wait, in the request's state (request.state.<name>).
STATE_KEY = "response_headers"

# For answers that show a secret once (a new API key, a webhook secret):
# no cache, shared or private, may keep a copy.
NO_STORE: dict[str, str] = {"Cache-Control": "no-store"}

R = TypeVar("R", bound=Response)


def no_store(response: R) -> R:
    """Mark an answer as never to be stored by a cache (it shows a secret)."""
    response.headers.update(NO_STORE)
    return response


def add_response_headers(scope: MutableMapping[str, Any], headers: Mapping[str, str]) -> None:
    """Record headers for the answer of this request, whatever it turns out to be."""
    state: dict[str, Any] = scope.setdefault("state", {})
    state.setdefault(STATE_KEY, {}).update(headers)


class ResponseHeaders:
    """Adds the headers recorded during the request to the answer's start message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                recorded = scope.get("state", {}).get(STATE_KEY)
                if recorded:
                    headers = MutableHeaders(scope=message)
                    for name, value in recorded.items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
