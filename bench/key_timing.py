"""Does a 401 take longer for a known lookup id than for an unknown key? (issue 10 item 8)

    .venv/bin/python -m bench.key_timing [--requests N] [--database-url URL]

Starts `tally serve` on a fresh port (with the per-address failure limit out
of the way), creates one platform key, then sends interleaved requests with
that key's lookup id and a wrong secret, and with random unknown keys, and
prints the median answer time of each.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from tally.auth import keys

TALLY = Path(sys.executable).parent / "tally"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(client: httpx2.Client) -> None:
    for _ in range(300):
        try:
            client.get("/healthz")
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise SystemExit("tally serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{scratch}/timing.db"
        env = os.environ | {
            "TALLY_DATABASE_URL": url,
            "TALLY_AUTH_FAILURES_PER_MINUTE": "100000000",
            "TALLY_LOG_LEVEL": "warning",
        }
        create = [str(TALLY), "keys", "create", "--kind", "platform", "--scope", "read:billing"]
        known = subprocess.run(
            create, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        near = known[:-1] + ("A" if known[-1] != "A" else "B")
        port = _free_port()
        server = subprocess.Popen(
            [str(TALLY), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx2.Client(base_url=base, trust_env=False, timeout=10) as client:
                _wait(client)
                samples: dict[str, list[float]] = {"known lookup id": [], "unknown key": []}
                for _ in range(args.requests):
                    for name, key in (("known lookup id", near), ("unknown key", None)):
                        headers = {"Authorization": f"Bearer {key or keys.generate_key()}"}
                        started = time.perf_counter()
                        answer = client.get("/billing/usage", headers=headers)
                        samples[name].append(time.perf_counter() - started)
                        assert answer.status_code == 401, answer.text
        finally:
            server.terminate()
            server.wait()
    for name, values in samples.items():
        print(f"{name}: median {statistics.median(values) * 1e6:.0f} us over {len(values)}")


if __name__ == "__main__":
    main()
