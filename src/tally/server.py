"""How tally serves HTTP: uvicorn's options and tally's own h11 protocol.

The protocol adds three things to uvicorn's h11 protocol:

- TCP_NODELAY on every connection. uvicorn's multi-process mode binds its
  listening socket with protocol 0, so asyncio never sets it on accepted
  connections and every keep-alive response waits for the client's delayed
  ACK (~40 ms).
- Read deadlines. uvicorn times out idle keep-alive connections, but not a
  connection that never completes its request: one that sends half a request
  line and then nothing, or one byte a second (slowloris), holds a file
  descriptor forever. Here a request head must arrive complete within
  `header_timeout_seconds` of its first byte (or of the connection), and its
  body within `body_timeout_seconds` of the head; otherwise the connection is
  closed without an answer.
- The connection limit answers with the 503 envelope (and Retry-After, and a
  request id) instead of uvicorn's plain-text 503: the protocol marks the
  request and the observability middleware answers it.

Reasons for each limit: docs/decisions.md, "Connection limits".
"""

import asyncio
import copy
import logging
import resource
import socket
from typing import Any

import h11
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from tally.observability.middleware import OVERLOADED_SCOPE_KEY
from tally.settings import Settings, get_settings

log = logging.getLogger("tally.server")
# File descriptors kept free of connections: the database pools, the log,
# the listening socket, files the process opens.
FD_RESERVE = 64
WORKER_HEALTHCHECK_SECONDS = 30


class NoDelayH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.header_timeout_seconds
        self.body_timeout = settings.body_timeout_seconds
        self.read_deadline: asyncio.TimerHandle | None = None
        # uvicorn's own check answers in plain text; ours marks the request.
        self.connection_limit, self.limit_concurrency = self.limit_concurrency, None
        self.app = self._guarded(self.app)

    def _guarded(self, app: Any) -> Any:
        connections, tasks, limit = self.connections, self.tasks, self.connection_limit

        async def guarded(scope: Any, receive: Any, send: Any) -> None:
            if limit is not None and (len(connections) > limit or len(tasks) > limit):
                scope[OVERLOADED_SCOPE_KEY] = True
            await app(scope, receive, send)

        return guarded

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def data_received(self, data: bytes) -> None:
        before = self.conn.their_state
        if before is h11.IDLE and self.read_deadline is None:
            self._arm(self.header_timeout)
        super().data_received(data)
        after = self.conn.their_state
        if after is h11.SEND_BODY:
            if before is h11.IDLE:
                self._arm(self.body_timeout)
        elif not (after is h11.IDLE and before is h11.IDLE):
            # The request is read (or the connection is done with): no deadline
            # while the app works; the next head's starts with its first byte.
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.read_deadline = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _read_timed_out(self) -> None:
        self.read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def raise_fd_limit() -> int:
    """Raise this process's soft file-descriptor limit to its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_limit(settings: Settings, fd_limit: int) -> int:
    """Connections per process: the setting, kept below the file-descriptor budget."""
    return max(1, min(settings.max_connections, fd_limit - FD_RESERVE))


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging, plus tally's JSON lines and the repeat filter on noisy loggers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    level = settings.log_level.upper()
    config["filters"] = {
        "repeats": {
            "()": "tally.observability.logfilter.RepeatFilter",
            "interval": settings.log_repeat_interval_seconds,
        }
    }
    config["formatters"]["json"] = {"()": "tally.observability.requestlog.JsonFormatter"}
    config["handlers"]["tally"] = {
        "formatter": "json",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["tally"] = {"handlers": ["tally"], "level": level, "propagate": False}
    config["loggers"]["uvicorn.error"] = {"level": level, "filters": ["repeats"]}
    # asyncio's accept loop logs "Too many open files" with a traceback per retry.
    config["loggers"]["asyncio"] = {
        "handlers": ["tally"],
        "level": "WARNING",
        "propagate": False,
        "filters": ["repeats"],
    }
    return config


def uvicorn_options(
    settings: Settings, host: str | None = None, port: int | None = None
) -> dict[str, Any]:
    """Every option `tally serve` passes to uvicorn.run (raises the fd limit first)."""
    fd_limit = raise_fd_limit()
    return {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": settings.log_level,
        "log_config": log_config(settings),
        # One line per request comes from tally's middleware instead.
        "access_log": False,
        "proxy_headers": settings.forwarded_allow_ips is not None,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "http": "tally.server:NoDelayH11Protocol",
        "limit_concurrency": connection_limit(settings, fd_limit),
        "backlog": settings.backlog,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        # With --workers, the supervisor kills a worker that does not answer its
        # ping within this time; uvicorn's 5 s killed workers still starting up
        # (importing) on a loaded machine, again and again.
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
    }
