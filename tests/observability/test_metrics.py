"""/metrics over the real app: per-template counts, ingestion counters, lock waits, the token."""

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tally.app import create_app
from tally.db.engine import Database
from tally.observability.metrics import observe_lock_wait, observe_request
from tally.settings import Settings
from tests.factories import Api, event


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_per_route_template_and_status(api: Api) -> None:
    company = api.company()
    ids = [f"ev-{n}" for n in range(5)]
    api.ingest(*(event(company, event_id) for event_id in ids))
    before = _samples(api.client)
    for event_id in ids:
        assert api.void(event_id).status_code == 200
    assert api.void("ev-unknown").status_code == 404
    api.client.get("/no/such/thing/1")
    api.client.get("/no/such/thing/2")
    after = _samples(api.client)
    void = {"method": "POST", "route": "/usage/events/{event_id}/void"}
    assert (
        _value(after, "tally_http_requests_total", **void, status="200")
        - _value(before, "tally_http_requests_total", **void, status="200")
        == 5
    )
    assert (
        _value(after, "tally_http_requests_total", **void, status="404")
        - _value(before, "tally_http_requests_total", **void, status="404")
        == 1
    )
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        _value(after, "tally_http_requests_total", **unmatched)
        - _value(before, "tally_http_requests_total", **unmatched)
        == 2
    )
    count = "tally_http_request_duration_seconds_count"
    assert (
        _value(after, count, **void, status="200") - _value(before, count, **void, status="200")
        == 5
    )
    # No raw path or id ever becomes a label.
    labels = " ".join(str(key) for key in after)
    assert "ev-" not in labels
    assert "/no/such" not in labels


def test_unknown_methods_share_one_label(client: TestClient) -> None:
    client.request("BREW", "/healthz")
    text = client.get("/metrics").text
    assert 'method="OTHER"' in text
    assert "BREW" not in text


def test_events_accepted_duplicate_and_rejected_batches_are_counted(api: Api) -> None:
    company = api.company()
    before = _samples(api.client)
    api.ingest(event(company, "a"), event(company, "b"), event(company, "c"))
    api.ingest(event(company, "a"), event(company, "d"))
    assert api.events(event(company, "e", minutes=-1)).status_code == 422
    assert api.events(event(company, "a", minutes=99)).status_code == 409
    after = _samples(api.client)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("tally_events_ingested_total", result="accepted") == 4
    assert delta("tally_events_ingested_total", result="duplicate") == 1
    assert delta("tally_event_batches_rejected_total", status="422") == 1
    assert delta("tally_event_batches_rejected_total", status="409") == 1


def test_lock_waits_are_exported(client: TestClient) -> None:
    before = _samples(client)
    observe_lock_wait(0.003)
    observe_lock_wait(2.0, lock="company")
    after = _samples(client)
    name = "tally_lock_wait_seconds_count"
    assert _value(after, name, lock="write") - _value(before, name, lock="write") == 1
    assert _value(after, name, lock="company") - _value(before, name, lock="company") == 1
    bucket = "tally_lock_wait_seconds_bucket"
    assert _value(after, bucket, lock="company", le="1.0") == _value(
        before, bucket, lock="company", le="1.0"
    )


def test_503_and_429_have_their_own_counters() -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:9/tally?connect_timeout=1")
    app = create_app(Settings(database_url=unreachable.url), database=unreachable)
    try:
        with TestClient(app) as client:
            before = _samples(client)
            assert client.get("/readyz").status_code == 503
            observe_request("GET", "/billing/usage", 429, 0.001)
            after = _samples(client)
    finally:
        unreachable.dispose()

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("tally_http_overloaded_total", route="/readyz") == 1
    assert delta("tally_http_rate_limited_total", route="/billing/usage") == 1
    assert delta("tally_http_overloaded_total", route="/billing/usage") == 0


def test_a_metrics_token_is_required_when_set(db: Database) -> None:
    app = create_app(Settings(database_url=db.url, metrics_token="s3cret-token"), database=db)
    with TestClient(app) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == "INVALID_API_KEY"
    assert right.status_code == 200
    assert "tally_http_requests_total" in right.text


def test_metrics_are_not_in_the_openapi_document(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
