"""Delivery: Standard Webhooks signatures, retries with the same id, the log, manual retry."""

import base64
import logging
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tally.app import create_app
from tally.db.engine import Database
from tally.webhooks.worker import Deliverer
from tests.factories import Api
from tests.webhooks.conftest import hook_settings
from tests.webhooks.helpers import deliveries, endpoint, now_event, planned_company, verified
from tests.webhooks.receiver import Receiver


def test_a_failing_receiver_gets_the_same_webhook_id_until_it_recovers(
    hooks: Api, receiver: Receiver, deliverer: Deliverer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    company = planned_company(hooks, thresholds=[100])
    hook = endpoint(hooks, receiver.url)
    receiver.queued = [500, 503]
    hooks.ingest(now_event(company, 100))
    for _ in range(3):
        deliverer.deliver_due()
    got = receiver.wait_for(3)
    assert len({item.headers["webhook-id"] for item in got}) == 1
    bodies = {item.body for item in got}
    assert len(bodies) == 1
    for item in got:
        verified(item, hook["secret"])
    (logged,) = deliveries(hooks)
    assert got[0].headers["webhook-id"] == logged["id"]
    assert logged["status"] == "delivered"
    assert (logged["attempts"], logged["lastStatusCode"], logged["nextAttemptAt"]) == (3, 204, None)
    assert logged["eventType"] == "usage.threshold_crossed"
    assert hook["secret"] not in caplog.text
    assert hook["secret"].removeprefix("whsec_") not in caplog.text


def test_after_the_last_retry_a_delivery_fails_and_a_manual_retry_sends_it(
    hooks: Api, receiver: Receiver, deliverer: Deliverer
):
    company = planned_company(hooks, thresholds=[100])
    endpoint(hooks, receiver.url)
    receiver.status = 500
    hooks.ingest(now_event(company, 100))
    for _ in range(6):
        deliverer.deliver_due()
    (logged,) = deliveries(hooks)
    # One attempt and one retry per backoff step (three in the tests).
    assert (logged["status"], logged["attempts"], logged["lastStatusCode"]) == ("failed", 4, 500)
    assert len(receiver.received) == 4
    receiver.status = 200
    retried = hooks.post(f"/admin/webhook-deliveries/{logged['id']}/retry", {})
    assert retried.status_code == 200
    assert retried.json()["data"]["status"] == "pending"
    deliverer.deliver_due()
    (logged,) = deliveries(hooks)
    assert (logged["status"], logged["attempts"], logged["lastStatusCode"]) == ("delivered", 5, 200)
    assert len({item.headers["webhook-id"] for item in receiver.received}) == 1
    assert hooks.post(f"/admin/webhook-deliveries/{'0' * 32}/retry", {}).status_code == 404


def test_retries_wait_for_their_backoff(hooks: Api, db: Database, receiver: Receiver):
    company = planned_company(hooks, thresholds=[100])
    endpoint(hooks, receiver.url)
    receiver.status = 500
    hooks.ingest(now_event(company, 100))
    slow = Deliverer(db, hook_settings(db, webhook_backoff_seconds=(3600.0,)))
    try:
        assert slow.deliver_due() == 1
        assert slow.deliver_due() == 0
    finally:
        slow.close()
    (logged,) = deliveries(hooks)
    assert logged["status"] == "pending"
    assert logged["nextAttemptAt"] is not None
    assert len(receiver.received) == 1


def test_a_private_target_is_refused_at_delivery_without_the_opt_in(
    hooks: Api, db: Database, receiver: Receiver
):
    company = planned_company(hooks, thresholds=[100])
    endpoint(hooks, receiver.url)  # allowed when created, then the operator turned it off
    hooks.ingest(now_event(company, 100))
    strict = Deliverer(db, hook_settings(db, webhook_allow_private=False))
    try:
        assert strict.deliver_due() == 1
    finally:
        strict.close()
    (logged,) = deliveries(hooks)
    assert (logged["attempts"], logged["lastStatusCode"]) == (1, None)
    assert receiver.received == []


def test_a_removed_endpoint_gets_nothing_more(hooks: Api, receiver: Receiver, deliverer: Deliverer):
    company = planned_company(hooks, thresholds=[50, 100])
    hook = endpoint(hooks, receiver.url)
    hooks.ingest(now_event(company, 60))
    removed = hooks.client.delete(
        f"/admin/webhook-endpoints/{hook['id']}", headers=hooks.auth(hooks.platform_key)
    )
    assert removed.status_code == 200
    hooks.ingest(now_event(company, 60))
    deliverer.deliver_due()
    assert receiver.received == []
    assert [item["status"] for item in deliveries(hooks)] == ["failed"]
    assert hooks.get("/admin/webhook-endpoints").json()["data"]["items"] == []


@pytest.fixture
def serving(db: Database) -> Iterator[Api]:
    """A server running its own in-process worker, polling fast."""
    settings = hook_settings(db, webhook_worker=True)
    with TestClient(create_app(settings, database=db), raise_server_exceptions=False) as client:
        yield Api.bootstrap(client, db)


def test_the_in_process_worker_delivers_without_help(serving: Api, receiver: Receiver):
    company = planned_company(serving, thresholds=[100])
    hook = endpoint(serving, receiver.url)
    serving.ingest(now_event(company, 100))
    # Polling every 50 ms: well within the wait, however busy the machine.
    (got,) = receiver.wait_for(1, timeout=15)
    body = verified(got, hook["secret"])
    assert body["data"]["threshold"] == 100
    assert got.headers["content-type"] == "application/json"
    assert int(got.headers["webhook-timestamp"]) <= time.time() + 1
    signature = got.headers["webhook-signature"]
    assert signature.startswith("v1,")
    assert len(base64.b64decode(signature.removeprefix("v1,"))) == 32


def test_workers_running_side_by_side_send_each_delivery_once(
    hooks: Api, db: Database, receiver: Receiver
):
    company = planned_company(hooks, thresholds=[100])
    for _ in range(12):
        endpoint(hooks, receiver.url)
    hooks.ingest(now_event(company, 100))
    workers = [Deliverer(db, hook_settings(db)) for _ in range(3)]
    try:
        threads = [threading.Thread(target=worker.deliver_due) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for worker in workers:
            worker.close()
    ids = [item.headers["webhook-id"] for item in receiver.wait_for(12)]
    assert sorted(ids) == sorted({item["id"] for item in deliveries(hooks)})
    assert {item["status"] for item in deliveries(hooks)} == {"delivered"}
