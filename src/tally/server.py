"""The HTTP protocol tally serves with: uvicorn's h11 protocol, without Nagle.

uvicorn's multi-process mode binds its listening socket with protocol 0, so
asyncio never sets TCP_NODELAY on accepted connections and every keep-alive
response waits for the client's delayed ACK (~40 ms). Setting it on each
connection here makes every mode answer as fast as the single-process one.
"""

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
