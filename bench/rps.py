"""Requests per second of GET /billing/usage (Q1) against GET /healthz, same server.

With wrk when it is installed (-t2 -c8), else a Python load loop of eight
keep-alive connections in threads: that loop is itself CPU-bound under the
GIL and competes with the server for the same cores, so its absolute numbers
are lower; the ratio of the two endpoints is what it is for.
"""

import re
import shutil
import subprocess
import threading
import time
from typing import Any

from bench.queries import Client

CONNECTIONS = 8
THREADS = 2
WARMUP_REQUESTS = 20


def wrk_path(python_load: bool) -> str | None:
    return None if python_load else shutil.which("wrk")


def _parse_wrk(output: str) -> dict[str, Any]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:[^\n]*", output)
    if rate is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output[-1000:]}")
    return {
        "rps": float(rate.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def _with_wrk(wrk: str, port: int, path: str, key: str | None, seconds: float) -> dict[str, Any]:
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s"]
    if key:
        command += ["-H", f"Authorization: Bearer {key}"]
    command.append(f"http://127.0.0.1:{port}{path}")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    return _parse_wrk(done.stdout + done.stderr)


def _python_worker(port: int, path: str, key: str | None, until: float, counts: list[int]) -> None:
    client = Client(port, key, timeout=30)
    ok = bad = 0
    try:
        while time.perf_counter() < until:
            status, _ = client.request("GET", path)
            if status == 200:
                ok += 1
            else:
                bad += 1
    finally:
        client.close()
        counts.extend((ok, bad))


def _with_python(port: int, path: str, key: str | None, seconds: float) -> dict[str, Any]:
    counts: list[int] = []
    began = time.perf_counter()
    until = began + seconds
    threads = [
        threading.Thread(target=_python_worker, args=(port, path, key, until, counts))
        for _ in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - began
    return {"rps": sum(counts[0::2]) / elapsed, "non_2xx": sum(counts[1::2])}


def _warm(port: int, path: str, key: str | None) -> None:
    client = Client(port, key)
    try:
        for _ in range(WARMUP_REQUESTS):
            client.get_ok(path)
    finally:
        client.close()


def measure(
    port: int, usage_path: str, key: str, seconds: float, python_load: bool
) -> dict[str, Any]:
    """Both endpoints, one after the other, with the tool used and the ratio."""
    wrk = wrk_path(python_load)
    results: dict[str, Any] = {"tool": "wrk -t2 -c8" if wrk else "python (8 threads)"}
    for name, path, auth in (("healthz", "/healthz", None), ("q1", usage_path, key)):
        _warm(port, path, auth)
        if wrk:
            results[name] = _with_wrk(wrk, port, path, auth, seconds)
        else:
            results[name] = _with_python(port, path, auth, seconds)
    results["ratio"] = results["q1"]["rps"] / results["healthz"]["rps"]
    return results
