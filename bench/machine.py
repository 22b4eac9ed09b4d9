"""The machine and software a run measured."""

import os
import platform
import sqlite3
import subprocess
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]
import psycopg

from bench.backends import reachable
from bench.config import REPO


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip()


def _postgres(admin_url: str) -> dict[str, str]:
    if reachable(admin_url) is not None:
        return {}
    from sqlalchemy.engine import make_url

    conninfo = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    settings = ("server_version", "synchronous_commit", "fsync", "shared_buffers")
    with psycopg.connect(conninfo, connect_timeout=3) as connection:
        return {name: str(connection.execute(f"SHOW {name}").fetchone()[0]) for name in settings}  # type: ignore[index]


def describe(admin_url: str) -> dict[str, Any]:
    """nproc, RAM, CPU, Python, SQLite, PostgreSQL, load average, git commit."""
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _postgres(admin_url),
        "loadavg_start": [round(value, 2) for value in os.getloadavg()],
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
