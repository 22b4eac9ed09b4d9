"""A crash between the commit of a crossing and its delivery loses nothing.

A real `tally serve` commits a batch that crosses a threshold while running
no worker, so nothing can have been sent; it is killed with SIGKILL, and a
restarted server (worker on) delivers the webhook, signed, at least once.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from tally.db.engine import Database
from tests.factories import make_key
from tests.webhooks.helpers import now_event, verified
from tests.webhooks.receiver import Receiver

TALLY = Path(sys.executable).parent / "tally"
STARTUP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve(db: Database, port: int, worker: bool, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "TALLY_DATABASE_URL": db.url,
        "TALLY_WEBHOOK_WORKER": "1" if worker else "0",
        "TALLY_WEBHOOK_ALLOW_PRIVATE": "1",
        "TALLY_WEBHOOK_POLL_SECONDS": "0.1",
        "TALLY_LOG_LEVEL": "info",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(TALLY), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx2.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("tally serve did not start: " + log.read_text())


def test_a_crossing_committed_before_a_kill_is_delivered_after_restart(
    db: Database, receiver: Receiver
):
    key = make_key(db, kind="platform", scopes=["admin", "write:usage", "read:billing"])
    headers = {"Authorization": f"Bearer {key}"}
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp()) / "serve.log"
    first = _serve(db, port, worker=False, log=log)
    try:
        company = httpx2.post(
            f"{base}/admin/companies",
            json={"name": "Globex", "billingSystem": "minutes"},
            headers=headers,
        ).json()["data"]["id"]
        plan = {"allowance": 10, "period": "month", "thresholds": [100]}
        assert (
            httpx2.put(
                f"{base}/admin/companies/{company}/plan", json=plan, headers=headers
            ).status_code
            == 200
        )
        secret = httpx2.post(
            f"{base}/admin/webhook-endpoints", json={"url": receiver.url}, headers=headers
        ).json()["data"]["secret"]
        batch = {"events": [now_event(company, 10) | {"minutes": 10}]}
        assert httpx2.post(f"{base}/usage/events", json=batch, headers=headers).status_code == 200
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert receiver.received == []
    second = _serve(db, port, worker=True, log=log)
    try:
        (got,) = receiver.wait_for(1, timeout=20)
        body = verified(got, secret)
        assert (body["data"]["companyId"], body["data"]["threshold"]) == (company, 100)
        listed = httpx2.get(f"{base}/admin/webhook-deliveries", headers=headers).json()["data"]
        deadline = time.monotonic() + 5
        while listed["items"][0]["status"] != "delivered" and time.monotonic() < deadline:
            time.sleep(0.1)
            listed = httpx2.get(f"{base}/admin/webhook-deliveries", headers=headers).json()["data"]
        assert listed["items"][0]["status"] == "delivered"
        assert listed["items"][0]["id"] == got.headers["webhook-id"]
    finally:
        second.terminate()
        second.wait(timeout=20)
    output = log.read_text()
    assert secret not in output
    assert secret.removeprefix("whsec_") not in output
    assert key not in output
