"""The outbox: each threshold once per company and period, whatever happens."""

import threading
from decimal import Decimal

from sqlalchemy import func, select

from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.usage import ingest
from tally.webhooks.models import ThresholdCrossing, WebhookDelivery
from tally.webhooks.worker import Deliverer
from tests.factories import Api, event
from tests.webhooks.helpers import (
    deliveries,
    endpoint,
    now_event,
    planned_company,
    thresholds_sent,
    verified,
)
from tests.webhooks.receiver import Receiver


def crossings(db: Database) -> list[tuple[str, int]]:
    with db.transaction(write=False) as session:
        rows = session.execute(select(ThresholdCrossing.company_id, ThresholdCrossing.threshold))
        return sorted((str(company), threshold) for company, threshold in rows)


def test_each_threshold_fires_once_whatever_the_duplicates_and_voids(
    hooks: Api, db: Database, receiver: Receiver, deliverer: Deliverer
):
    company = planned_company(hooks)
    hook = endpoint(hooks, receiver.url)
    first = [now_event(company, 30), now_event(company, 25)]
    hooks.ingest(*first)
    assert hooks.ingest(*first) == {"accepted": 0, "duplicates": 2}
    hooks.ingest(now_event(company, 10))  # 65: nothing new
    late = now_event(company, 20)
    hooks.ingest(late)  # 85: crosses 80
    assert hooks.void(late["id"]).status_code == 200  # back to 65
    hooks.ingest(now_event(company, 20))  # 85 again: 80 already fired this period
    deliverer.deliver_due()
    got = receiver.wait_for(2)
    assert thresholds_sent(got) == [50, 80]
    body = verified(got[0], hook["secret"])
    assert body["type"] == "usage.threshold_crossed"
    assert body["data"]["companyId"] == company
    assert body["data"]["unit"] == "minutes"
    assert body["data"]["allowance"] == 100
    hooks.ingest(now_event(company, Decimal("15.000001")))  # 100.000001: crosses 100
    deliverer.deliver_due()
    assert thresholds_sent(receiver.wait_for(3)) == [50, 80, 100]
    assert len(crossings(db)) == 3
    assert {item["status"] for item in deliveries(hooks)} == {"delivered"}


def test_a_rejected_batch_records_nothing(hooks: Api, db: Database, receiver: Receiver):
    company = planned_company(hooks)
    endpoint(hooks, receiver.url)
    response = hooks.events(now_event(company, 90), now_event(company, -1))
    assert response.status_code == 422
    conflict = now_event(company, 1)
    hooks.ingest(conflict)
    assert hooks.events(now_event(company, 99), conflict | {"minutes": 2}).status_code == 409
    assert crossings(db) == []
    assert deliveries(hooks) == []


def test_only_events_of_the_current_period_cross(hooks: Api, db: Database, receiver: Receiver):
    company = planned_company(hooks)
    endpoint(hooks, receiver.url)
    hooks.ingest(event(company, occurredAt="2002-03-04T00:00:00Z", minutes=5000))
    hooks.ingest(now_event(company, 99, isTest=True))
    assert crossings(db) == []
    hooks.ingest(now_event(company, 60))
    assert [threshold for _, threshold in crossings(db)] == [50]


def test_endpoints_receive_their_companies_only(hooks: Api, db: Database, receiver: Receiver):
    ats = hooks.ats("Lever")
    other_ats = hooks.ats("Ashby")
    direct = planned_company(hooks, "Direct", thresholds=[100])
    managed = planned_company(hooks, "Managed", ats=ats, thresholds=[100])
    elsewhere = planned_company(hooks, "Elsewhere", ats=other_ats, thresholds=[100])
    for_direct = endpoint(hooks, receiver.url, companyId=direct)
    for_ats = endpoint(hooks, receiver.url, atsIntegrationId=ats)
    for_all = endpoint(hooks, receiver.url, description="everything")
    hooks.ingest(*(now_event(company, 100) for company in (direct, managed, elsewhere)))
    targets = {item["endpointId"] for item in deliveries(hooks, endpointId=for_direct["id"])}
    assert len(deliveries(hooks, endpointId=for_direct["id"])) == 1
    assert len(deliveries(hooks, endpointId=for_ats["id"])) == 1
    assert len(deliveries(hooks, endpointId=for_all["id"])) == 3
    assert targets == {for_direct["id"]}
    with db.transaction(write=False) as session:
        pairs = session.execute(
            select(WebhookDelivery.endpoint_id, ThresholdCrossing.company_id).join(
                ThresholdCrossing, ThresholdCrossing.id == WebhookDelivery.crossing_id
            )
        )
        seen = {(str(e), str(c)) for e, c in pairs}
    assert (for_direct["id"], direct) in seen
    assert (for_ats["id"], managed) in seen
    assert (for_ats["id"], elsewhere) not in seen
    assert (for_direct["id"], managed) not in seen


def test_eight_concurrent_batches_fire_each_threshold_once(
    hooks: Api, db: Database, receiver: Receiver, deliverer: Deliverer
):
    company = planned_company(hooks, allowance=100, thresholds=[80, 100])
    endpoint(hooks, receiver.url)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def send(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            # Its own transaction, as a request would have.
            with db.transaction(write=True) as session:
                ingest.ingest(
                    session, {"events": [now_event(company, 90, id=f"c-{index}")]}, utcnow()
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert [threshold for _, threshold in crossings(db)] == [80, 100]
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 2
    deliverer.deliver_due()
    assert thresholds_sent(receiver.wait_for(2)) == [80, 100]
