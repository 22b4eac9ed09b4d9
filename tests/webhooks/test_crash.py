"""A crash between the commit of a crossing and its delivery loses nothing.

A real `tally serve` commits a batch that crosses a threshold while running
no worker, so nothing can have been sent; it is killed with SIGKILL, and a
restarted server (worker on) delivers the webhook, signed, at least once.
"""

import time
from pathlib import Path

import httpx2

from tally.db.engine import Database
from tests.factories import make_key
from tests.servers import Server, free_port, start_serve
from tests.webhooks.helpers import now_event, verified
from tests.webhooks.receiver import Receiver

WORKER_STOP_TIMEOUT = 20.0


def _serve(db: Database, tmp: Path, port: int, worker: bool, log: Path) -> Server:
    env = {
        "TALLY_WEBHOOK_WORKER": "1" if worker else "0",
        "TALLY_WEBHOOK_ALLOW_PRIVATE": "1",
        "TALLY_WEBHOOK_POLL_SECONDS": "0.1",
        "TALLY_LOG_LEVEL": "info",
    }
    return start_serve(db.url, tmp, env=env, port=port, log=log, stop_timeout=WORKER_STOP_TIMEOUT)


def test_a_crossing_committed_before_a_kill_is_delivered_after_restart(
    db: Database, receiver: Receiver, tmp_path: Path
):
    key = make_key(db, kind="platform", scopes=["admin", "write:usage", "read:billing"])
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    first = _serve(db, tmp_path, port, worker=False, log=log)
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
        first.kill()
    assert receiver.received == []
    second = _serve(db, tmp_path, port, worker=True, log=log)
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
        second.stop()
    output = log.read_text()
    assert secret not in output
    assert secret.removeprefix("whsec_") not in output
    assert key not in output
