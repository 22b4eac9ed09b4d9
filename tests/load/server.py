"""A real `tally serve` in a subprocess, on a free port, for load and crash tests."""

import os
import subprocess
from pathlib import Path

from tests.servers import TALLY, Server, start_serve

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def environment(url: str, **settings: str) -> dict[str, str]:
    extra = {f"TALLY_{name.upper()}": value for name, value in settings.items()}
    # MALLOC_ARENA_MAX set: `tally serve` does not re-exec itself, its pid stays ours.
    return (
        os.environ
        | {
            "TALLY_DATABASE_URL": url,
            "TALLY_LOG_LEVEL": "warning",
            "MALLOC_ARENA_MAX": "2",
        }
        | extra
    )


def start(url: str, tmp: Path, *flags: str, **settings: str) -> Server:
    """Start `tally serve` in its own process group (so kill -9 reaches every worker)
    and wait until /healthz answers."""
    return start_serve(
        url,
        tmp,
        *flags,
        env=environment(url, **settings),
        group=True,
        startup_timeout=STARTUP_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    )


def verify(url: str) -> "subprocess.CompletedProcess[str]":
    """`tally verify` against the database: exit 0 when every aggregate matches."""
    return subprocess.run(  # noqa: S603 - our own console script
        [str(TALLY), "verify"],
        env=environment(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
