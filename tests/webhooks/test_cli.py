"""`tally worker`: a process of its own delivers what the serving processes recorded."""

import os
import signal
import subprocess
from pathlib import Path

from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.usage import ingest
from tests.factories import Api
from tests.servers import TALLY
from tests.webhooks.helpers import endpoint, now_event, planned_company, verified
from tests.webhooks.receiver import Receiver


def test_tally_worker_delivers_and_stops_on_interrupt(
    hooks: Api, db: Database, receiver: Receiver, tmp_path: Path
):
    company = planned_company(hooks, thresholds=[100])
    hook = endpoint(hooks, receiver.url)
    with db.transaction(write=True) as session:
        ingest.ingest(session, {"events": [now_event(company, 100)]}, utcnow())
    env = os.environ | {
        "TALLY_DATABASE_URL": db.url,
        "TALLY_WEBHOOK_ALLOW_PRIVATE": "1",
        "TALLY_WEBHOOK_POLL_SECONDS": "0.1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: S603 - our own console script
            [str(TALLY), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        (got,) = receiver.wait_for(1, timeout=40)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            status = worker.wait(timeout=20)
        finally:
            if worker.poll() is None:  # never left running to deliver other tests' hooks
                worker.kill()
                worker.wait()
    assert verified(got, hook["secret"])["data"]["threshold"] == 100
    assert status == 0
    output = log.read_text()
    assert "Traceback" not in output
    assert hook["secret"] not in output
