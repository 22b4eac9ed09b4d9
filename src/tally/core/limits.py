"""A pure ASGI middleware that refuses bodies over the size limit with 413."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally.core.envelope import failure


class BodyLimit:
    """Buffers at most `limit` bytes of a request body; anything more is a 413.

    Checking the declared Content-Length first avoids reading a huge body at
    all; counting while reading catches chunked bodies that declare none.
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
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = failure(
            413,
            "PAYLOAD_TOO_LARGE",
            f"request body over {self.limit} bytes",
            details={"limitBytes": self.limit},
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], upstream: Receive) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        # The body is consumed: what comes next is the client's real disconnect.
        # (Answering one at once would make a streaming response stop
        # before its first chunk: Starlette listens for it while it streams.)
        return await upstream()

    return receive
