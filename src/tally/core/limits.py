"""A pure ASGI middleware that refuses bodies over the size limit with 413."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally.core.envelope import failure
from tally.errors import PayloadTooLarge


class BodyOverLimit(PayloadTooLarge, HTTPException):
    """413 in the envelope (as a TallyError, found first by the handlers).

    Also a Starlette HTTPException: FastAPI re-raises those when reading a
    declared body parameter, where any other exception becomes a 400.
    """

    def __init__(self, limit: int) -> None:
        message = f"request body over {limit} bytes"
        HTTPException.__init__(self, 413, message)
        PayloadTooLarge.__init__(self, message, details={"limitBytes": limit})


class BodyLimit:
    """Lets at most `limit` bytes of a request body through; anything more is a 413.

    A declared Content-Length over the limit is refused at once, before
    anything is read. Otherwise the body is counted as the application reads
    it (chunked bodies declare no length), and only when it reads it: tally
    reads a body after authenticating the caller (tally.bodies), so an
    unauthenticated request is refused before a byte of its body is read.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = failure(
                413, "PAYLOAD_TOO_LARGE", self._message, details={"limitBytes": self.limit}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    @property
    def _message(self) -> str:
        return f"request body over {self.limit} bytes"

    def _counting(self, receive: Receive) -> Receive:
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    # Raised into the route reading the body; the envelope's
                    # handler answers 413 and nothing has been done.
                    raise BodyOverLimit(self.limit)
            return message

        return counted
