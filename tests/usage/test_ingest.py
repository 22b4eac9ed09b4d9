"""POST /usage/events and voids (SPEC section 3).

Every rejected request is checked against a snapshot of every row of every
table: a rejected batch leaves the database exactly as it was.
"""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import simplejson
from httpx2 import Response
from sqlalchemy import select

from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.db.models import Base
from tally.usage import fold
from tally.usage.models import UsageEvent
from tests.factories import Api, event

MIB = 1024 * 1024
MISSING = object()
RULES_FROM = "2020-01-01T00:00:00Z"


@dataclass(frozen=True)
class World:
    minutes: str  # a minutes company, no pricing rule at all
    credits: str  # a credits company; interview_minutes has a platform rule
    other: str  # another minutes company


@pytest.fixture
def world(api: Api) -> World:
    minutes = api.company("Acme Corp", "minutes")
    credits = api.company("Globex", "credits")
    other = api.company("Initech", "minutes")
    api.rule(
        costKey="interview_minutes",
        baseCost=5,
        includedMinutes=10,
        costPerMinute=Decimal("0.5"),
        effectiveFrom=RULES_FROM,
    )
    # Something stored already, so that "nothing changed" means something.
    api.ingest(
        event(minutes, "ev-stored-1", interviewId="iv-stored", minutes=3),
        event(credits, "ev-stored-2", interviewId="iv-credits", minutes=Decimal("24.5")),
        event(other, "ev-stored-test", interviewId="iv-test", isTest=True),
    )
    return World(minutes=minutes, credits=credits, other=other)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with db.engine.connect() as connection:
        return {
            table.name: sorted((tuple(row) for row in connection.execute(table.select())), key=repr)
            for table in Base.metadata.sorted_tables
        }


@contextmanager
def unchanged(db: Database) -> Iterator[None]:
    # The app's folder may fold the tail at any moment: compare folded states
    # (a change a rejected batch left in the tail still shows once folded).
    db.write(fold.fold_all)
    before = snapshot(db)
    assert before["usage_events"], "the fixture stores events first"
    yield
    db.write(fold.fold_all)
    assert snapshot(db) == before


def _error(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "data", "error", "timestamp"}
    assert body["success"] is False
    assert body["data"] is None
    assert body["timestamp"].endswith("Z")
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


def rejected(api: Api, db: Database, events: list[Any], status: int, code: str) -> dict[str, Any]:
    """Post a batch that must fail; the database must not change at all."""
    with unchanged(db):
        return _error(api.post("/usage/events", {"events": events}), status, code)


def rejected_raw(api: Api, db: Database, content: bytes, status: int, code: str) -> dict[str, Any]:
    headers = api.auth(api.platform_key) | {"Content-Type": "application/json"}
    with unchanged(db):
        return _error(
            api.client.post("/usage/events", content=content, headers=headers), status, code
        )


def invalid_fields(error: dict[str, Any]) -> set[tuple[int, str]]:
    errors = error["details"]["errors"]
    for item in errors:
        assert set(item) == {"index", "field", "message"}, item
        assert isinstance(item["message"], str)
        assert item["message"]
    return {(item["index"], item["field"]) for item in errors}


def company_usage(api: Api, company: str, start: str, end: str) -> dict[str, Any]:
    response = api.usage(companyId=company, start=start, end=end)
    assert response.status_code == 200, response.text
    (row,) = json.loads(response.text, parse_float=Decimal)["data"]["companies"]
    data: dict[str, Any] = row
    return data


def stored_event(db: Database, event_id: str) -> UsageEvent | None:
    with db.transaction(write=False) as session:
        return session.scalar(select(UsageEvent).where(UsageEvent.id == event_id))


def _in(minutes: float) -> str:
    return (utcnow() + timedelta(minutes=minutes)).isoformat()


# --- every malformed field ------------------------------------------------------------------

FIELD_CASES: list[tuple[str, Any]] = [
    ("id", MISSING),
    ("id", ""),
    ("id", "x" * 129),
    ("id", "has space"),
    ("id", "slash/ed"),
    ("id", "hash#"),
    ("id", "accént"),
    ("id", "tab\t"),
    ("id", 12345),
    ("id", None),
    ("companyId", MISSING),
    ("companyId", "acme"),
    ("companyId", "11111111-1111-4111-8111-11111111111"),
    ("companyId", ""),
    ("companyId", 7),
    ("companyId", None),
    ("companyId", str(uuid.uuid4())),
    ("costKey", MISSING),
    ("costKey", "Interview_minutes"),
    ("costKey", "INTERVIEW_MINUTES"),
    ("costKey", "a" * 65),
    ("costKey", ""),
    ("costKey", "1minutes"),
    ("costKey", "interview-minutes"),
    ("costKey", "_minutes"),
    ("costKey", None),
    ("costKey", 5),
    ("occurredAt", MISSING),
    ("occurredAt", "2026-02-10T10:00:00"),
    ("occurredAt", "2026-02-10"),
    ("occurredAt", "yesterday"),
    ("occurredAt", ""),
    ("occurredAt", "2026-02-30T10:00:00Z"),
    ("occurredAt", "2026-02-10T10:00:00.1234567Z"),
    ("occurredAt", "2026-02-10T25:00:00Z"),
    ("occurredAt", 1770717600),
    ("occurredAt", None),
    ("occurredAt", "0001-01-01T00:00:00+01:00"),
    ("occurredAt", "9999-12-31T23:59:59-01:00"),
    ("minutes", -1),
    ("minutes", Decimal("-0.000001")),
    ("minutes", 10001),
    ("minutes", Decimal("10000.000001")),
    ("minutes", Decimal("1.1234567")),
    ("minutes", Decimal("1E-7")),
    ("minutes", Decimal("1E+400")),
    ("minutes", 10**30),
    ("minutes", "12.5"),
    ("minutes", True),
    ("minutes", False),
    ("minutes", [1]),
    ("minutes", {"value": 1}),
    ("interviewId", ""),
    ("interviewId", "iv 1"),
    ("interviewId", "iv/1"),
    ("interviewId", "x" * 129),
    ("interviewId", 42),
    ("isTest", "true"),
    ("isTest", "false"),
    ("isTest", 1),
    ("isTest", 0),
    ("agentFocus", "screening"),
    ("agentFocus", "INTERVIEWING"),
    ("agentFocus", ""),
    ("agentFocus", 1),
]


def test_every_malformed_field_is_named(
    api: Api, db: Database, world: World, subtests: pytest.Subtests
) -> None:
    for field, value in FIELD_CASES:
        with subtests.test(field=field, value=value):
            bad = event(world.minutes, "ev-bad")
            if value is MISSING:
                del bad[field]
            else:
                bad[field] = value
            batch = [event(world.minutes, "ev-good-1"), bad, event(world.credits, "ev-good-2")]
            error = rejected(api, db, batch, 422, "INVALID_EVENTS")
            assert invalid_fields(error) == {(1, field)}


def test_unknown_fields_are_named(api: Api, db: Database, world: World) -> None:
    for extra in ("foo", "company_id", "credits", "voided", "pricingRuleId"):
        bad = event(world.minutes, "ev-bad") | {extra: 1}
        error = rejected(api, db, [event(world.minutes), bad], 422, "INVALID_EVENTS")
        assert invalid_fields(error) == {(1, extra)}


def test_an_event_that_is_not_an_object_is_named_by_index(
    api: Api, db: Database, world: World
) -> None:
    not_objects: list[Any] = ["an event", None, [], 5, True]
    for item in not_objects:
        error = rejected(api, db, [event(world.minutes), item], 422, "INVALID_EVENTS")
        assert {index for index, _ in invalid_fields(error)} == {1}, item


def test_every_bad_event_of_a_batch_is_listed(api: Api, db: Database, world: World) -> None:
    batch = [
        event(world.minutes),
        event(world.minutes, "bad id"),
        event(world.minutes, minutes=-1, costKey="Bad"),
        event(world.credits),
        event(str(uuid.uuid4())),
        event(world.minutes, occurredAt=_in(6)),
        event(world.minutes, isTest="no", agentFocus="x", color="red"),
    ]
    error = rejected(api, db, batch, 422, "INVALID_EVENTS")
    assert invalid_fields(error) == {
        (1, "id"),
        (2, "minutes"),
        (2, "costKey"),
        (4, "companyId"),
        (5, "occurredAt"),
        (6, "isTest"),
        (6, "agentFocus"),
        (6, "color"),
    }


def test_limits_of_valid_fields_are_accepted(api: Api, world: World, db: Database) -> None:
    longest = "aZ0._:-" * 18 + "xy"
    assert len(longest) == 128
    batch = [
        event(world.minutes, longest, interviewId=longest, costKey="k" + "_" * 62 + "9"),
        event(world.minutes, "ev-max", minutes=10000, agentFocus="SCREENING"),
        event(world.minutes, "ev-min", minutes=0, agentFocus="OUTREACH", isTest=True),
        event(world.minutes, "ev-fine", minutes=Decimal("0.000001"), agentFocus="LANGUAGE_TEST"),
        event(world.minutes, "ev-offset", occurredAt="2026-02-10T09:30:00.25+05:30"),
        event(world.minutes, "ev-generic", agentFocus="GENERIC", interviewId=None),
        event(world.minutes, "ev-null-focus", agentFocus=None),
        {k: v for k, v in event(world.minutes, "ev-no-minutes").items() if k != "minutes"},
    ]
    assert api.ingest(*batch) == {"accepted": len(batch), "duplicates": 0}
    row = stored_event(db, "ev-fine")
    assert row is not None
    assert row.minutes == 1  # millionths: exact


def test_ids_are_case_sensitive(api: Api, world: World) -> None:
    assert api.ingest(event(world.minutes, "ev-A"), event(world.minutes, "ev-a")) == {
        "accepted": 2,
        "duplicates": 0,
    }


def test_occurred_at_up_to_5_minutes_ahead(api: Api, db: Database, world: World) -> None:
    assert api.ingest(event(world.minutes, "ev-soon", occurredAt=_in(4)))["accepted"] == 1
    error = rejected(
        api, db, [event(world.minutes, "ev-later", occurredAt=_in(6))], 422, "INVALID_EVENTS"
    )
    assert invalid_fields(error) == {(0, "occurredAt")}
    far = (utcnow() + timedelta(days=1)).isoformat()
    error = rejected(api, db, [event(world.minutes, occurredAt=far)], 422, "INVALID_EVENTS")
    assert invalid_fields(error) == {(0, "occurredAt")}


# --- the body as a whole ------------------------------------------------------------------------

BAD_BODIES: list[bytes] = [
    b"{not json",
    b"",
    b"null",
    b"[]",
    b'"events"',
    b"42",
    b"{}",
    b'{"events": {}}',
    b'{"events": "ev-1"}',
    b'{"events": null}',
    b'{"events": []}',
    b'{"event": []}',
    b'{"events": [{"id": "a"}]',
    b'{"events": ["\xff\xfe"]}',
    b'{"events": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
]


def test_malformed_bodies_are_validation_errors(
    api: Api, db: Database, world: World, subtests: pytest.Subtests
) -> None:
    for content in BAD_BODIES:
        with subtests.test(body=content[:40]):
            rejected_raw(api, db, content, 400, "VALIDATION_ERROR")


def test_nan_and_infinity_minutes_are_refused(
    api: Api, db: Database, world: World, subtests: pytest.Subtests
) -> None:
    # Not JSON at all (RFC 8259 has no such numbers), so the body is refused as such.
    good = simplejson.dumps(event(world.minutes, "ev-nan")).encode()
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        with subtests.test(literal=literal):
            bad = good.replace(b'"minutes": 10', b'"minutes": ' + literal)
            assert bad != good
            rejected_raw(api, db, b'{"events": [' + bad + b"]}", 400, "VALIDATION_ERROR")


def test_batch_sizes(api: Api, db: Database, world: World) -> None:
    too_many = [event(world.minutes, f"ev-{index}") for index in range(1001)]
    error = rejected(api, db, too_many, 400, "VALIDATION_ERROR")
    assert "events" in json.dumps(error["details"])
    assert api.ingest(*too_many[:1000]) == {"accepted": 1000, "duplicates": 0}
    assert api.ingest(*too_many[:1000]) == {"accepted": 0, "duplicates": 1000}


def _padded(world: World, size: int) -> bytes:
    """A valid one-event batch, padded with JSON whitespace to exactly `size` bytes."""
    core = simplejson.dumps({"events": [event(world.minutes, "ev-padded")]}).encode()
    return core[:-1] + b" " * (size - len(core)) + b"}"


def test_body_of_exactly_1_mib_is_accepted(api: Api, world: World) -> None:
    body = _padded(world, MIB)
    assert len(body) == MIB
    headers = api.auth(api.platform_key) | {"Content-Type": "application/json"}
    response = api.client.post("/usage/events", content=body, headers=headers)
    assert response.status_code == 200, response.text[:500]


def test_body_over_1_mib_is_413(api: Api, db: Database, world: World) -> None:
    error = rejected_raw(api, db, _padded(world, MIB + 1), 413, "PAYLOAD_TOO_LARGE")
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    huge = [event(world.minutes, f"ev-{index}", interviewId="x" * 120) for index in range(1000)]
    big = simplejson.dumps({"events": huge}).encode() + b" " * MIB
    rejected_raw(api, db, big, 413, "PAYLOAD_TOO_LARGE")


def test_streamed_body_over_1_mib_is_413(api: Api, db: Database, world: World) -> None:
    body = _padded(world, MIB + 4096)

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(body), 64 * 1024):
            yield body[offset : offset + 64 * 1024]

    headers = api.auth(api.platform_key) | {"Content-Type": "application/json"}
    with unchanged(db):
        response = api.client.post("/usage/events", content=chunks(), headers=headers)
        _error(response, 413, "PAYLOAD_TOO_LARGE")


# --- idempotency ---------------------------------------------------------------------------------


def _base(world: World) -> dict[str, Any]:
    return event(
        world.minutes, "ev-same", occurredAt="2026-02-10T10:00:00Z", minutes=Decimal("12.5")
    )


SAME_PAYLOADS: list[dict[str, Any]] = [
    {},
    {"occurredAt": "2026-02-10T11:00:00+01:00"},
    {"occurredAt": "2026-02-10T04:30:00-05:30"},
    {"occurredAt": "2026-02-10T10:00:00.000000Z"},
    {"occurredAt": "2026-02-10T10:00:00+00:00"},
    {"occurredAt": "2026-02-10T10:00Z"},
    {"minutes": Decimal("12.50")},
    {"minutes": Decimal("12.500000")},
    {"minutes": Decimal("1.25E+1")},
    {"isTest": False},
    {"interviewId": None},
    {"agentFocus": None},
]


def test_same_payload_after_normalisation_is_a_duplicate(
    api: Api, db: Database, world: World, subtests: pytest.Subtests
) -> None:
    assert api.ingest(_base(world)) == {"accepted": 1, "duplicates": 0}
    for changes in SAME_PAYLOADS:
        with subtests.test(changes=changes):
            with unchanged(db):
                result = api.ingest(_base(world) | changes)
            assert result == {"accepted": 0, "duplicates": 1}
    usage = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert usage["totalMinutesUsed"] == Decimal("15.5")  # 12.5 + the fixture's 3, once


def test_omitted_minutes_equals_explicit_zero(api: Api, world: World) -> None:
    bare = {k: v for k, v in event(world.minutes, "ev-zero").items() if k != "minutes"}
    assert api.ingest(bare) == {"accepted": 1, "duplicates": 0}
    for minutes in (0, Decimal("0.0"), Decimal("0.000000")):
        assert api.ingest(bare | {"minutes": minutes}) == {"accepted": 0, "duplicates": 1}


def test_duplicates_are_counted_alongside_new_events(api: Api, world: World) -> None:
    first = [event(world.minutes, f"ev-{index}") for index in range(3)]
    assert api.ingest(*first) == {"accepted": 3, "duplicates": 0}
    second = [*first[:2], event(world.minutes, "ev-new"), first[2]]
    assert api.ingest(*second) == {"accepted": 1, "duplicates": 3}
    same_twice = event(world.minutes, "ev-twice")
    assert api.ingest(same_twice, dict(same_twice)) == {"accepted": 1, "duplicates": 1}
    usage = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert usage["breakdownByCostKey"][0]["events"] == 1 + 3 + 1 + 1


CONFLICTS: list[dict[str, Any]] = [
    {"minutes": Decimal("12.500001")},
    {"minutes": 0},
    {"occurredAt": "2026-02-10T10:00:00.000001Z"},
    {"occurredAt": "2026-02-10T10:00:00+01:00"},
    {"costKey": "sourcing_enrichment"},
    {"isTest": True},
    {"interviewId": "iv-new"},
    {"agentFocus": "SCREENING"},
]


def test_same_id_with_another_payload_is_409_and_nothing_stored(
    api: Api, db: Database, world: World, subtests: pytest.Subtests
) -> None:
    api.ingest(_base(world))
    for changes in CONFLICTS:
        with subtests.test(changes=changes):
            batch = [event(world.minutes, "ev-innocent"), _base(world) | changes]
            rejected(api, db, batch, 409, "EVENT_CONFLICT")


def test_same_id_in_another_company_is_409(api: Api, db: Database, world: World) -> None:
    api.ingest(_base(world))
    rejected(api, db, [_base(world) | {"companyId": world.other}], 409, "EVENT_CONFLICT")


def test_conflict_inside_one_batch_is_409(api: Api, db: Database, world: World) -> None:
    batch = [
        event(world.minutes, "ev-innocent"),
        _base(world),
        _base(world) | {"minutes": 13},
    ]
    rejected(api, db, batch, 409, "EVENT_CONFLICT")
    assert stored_event(db, "ev-innocent") is None


# --- one interview, one company, one test flag ---------------------------------------------------


def test_interview_company_is_fixed_across_batches(api: Api, db: Database, world: World) -> None:
    moved = event(world.other, "ev-moved", interviewId="iv-stored")
    error = rejected(api, db, [event(world.minutes), moved], 422, "INVALID_EVENTS")
    assert invalid_fields(error) == {(1, "companyId")}


def test_interview_test_flag_is_fixed_across_batches(api: Api, db: Database, world: World) -> None:
    real = event(world.other, "ev-real", interviewId="iv-test", isTest=False)
    error = rejected(api, db, [real], 422, "INVALID_EVENTS")
    assert invalid_fields(error) == {(0, "isTest")}
    test = event(world.minutes, "ev-test", interviewId="iv-stored", isTest=True)
    error = rejected(api, db, [test], 422, "INVALID_EVENTS")
    assert invalid_fields(error) == {(0, "isTest")}


def test_interview_contradictions_inside_one_batch(api: Api, db: Database, world: World) -> None:
    batch = [
        event(world.minutes, "ev-1", interviewId="iv-new"),
        event(world.other, "ev-2", interviewId="iv-new"),
        event(world.minutes, "ev-3", interviewId="iv-new", isTest=True),
    ]
    error = rejected(api, db, batch, 422, "INVALID_EVENTS")
    assert invalid_fields(error) == {(1, "companyId"), (2, "isTest")}


def test_interview_accepts_more_events_of_the_same_company_and_flag(api: Api, world: World) -> None:
    more = [
        event(world.minutes, "ev-more-1", interviewId="iv-stored", costKey="sourcing_enrichment"),
        event(world.minutes, "ev-more-2", interviewId="iv-stored", isTest=False),
        event(world.other, "ev-more-3", interviewId="iv-test", isTest=True),
    ]
    assert api.ingest(*more) == {"accepted": 3, "duplicates": 0}
    usage = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert usage["totalInterviews"] == 1


# --- voids ---------------------------------------------------------------------------------------


def _void_data(api: Api, event_id: str) -> dict[str, Any]:
    response = api.void(event_id)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_void_stops_counting_but_keeps_the_event(api: Api, db: Database, world: World) -> None:
    api.ingest(event(world.minutes, "ev-second", interviewId="iv-second", minutes=7))
    before = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert before["totalMinutesUsed"] == 10
    assert before["totalInterviews"] == 2

    first = _void_data(api, "ev-second")
    assert first["id"] == "ev-second"
    assert first["voidedAt"].endswith("Z")
    after = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert after["totalMinutesUsed"] == 3
    assert after["totalInterviews"] == 1
    assert after["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 1, "minutesUsed": 3}
    ]
    row = stored_event(db, "ev-second")
    assert row is not None
    assert row.voided_at is not None
    assert row.minutes == 7_000_000


def test_void_is_idempotent(api: Api, db: Database, world: World) -> None:
    first = _void_data(api, "ev-stored-1")
    with unchanged(db):
        again = _void_data(api, "ev-stored-1")
    assert again == first
    usage = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert usage["totalMinutesUsed"] == 0
    assert usage["totalInterviews"] == 0
    assert usage["breakdownByCostKey"] == []


def test_void_of_an_unknown_event_is_404(api: Api, db: Database, world: World) -> None:
    with unchanged(db):
        _error(api.void("ev-never-seen"), 404, "NOT_FOUND")
        _error(api.void("EV-STORED-1"), 404, "NOT_FOUND")


def test_resending_a_voided_event_does_not_revive_it(api: Api, db: Database, world: World) -> None:
    _void_data(api, "ev-stored-1")
    with unchanged(db):
        result = api.ingest(event(world.minutes, "ev-stored-1", interviewId="iv-stored", minutes=3))
    assert result == {"accepted": 0, "duplicates": 1}
    usage = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert usage["totalMinutesUsed"] == 0


def test_voiding_an_interview_s_first_event_moves_the_interview(api: Api, world: World) -> None:
    api.ingest(
        event(world.minutes, "ev-feb", interviewId="iv-x", occurredAt="2026-02-20T10:00:00Z"),
        event(world.minutes, "ev-mar", interviewId="iv-x", occurredAt="2026-03-05T10:00:00Z"),
    )
    feb = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    mar = company_usage(api, world.minutes, "2026-03-01", "2026-04-01")
    assert (feb["totalInterviews"], mar["totalInterviews"]) == (2, 0)
    _void_data(api, "ev-feb")
    feb = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    mar = company_usage(api, world.minutes, "2026-03-01", "2026-04-01")
    assert (feb["totalInterviews"], mar["totalInterviews"]) == (1, 1)
    _void_data(api, "ev-mar")
    mar = company_usage(api, world.minutes, "2026-03-01", "2026-04-01")
    assert mar["totalInterviews"] == 0
    assert mar["breakdownByCostKey"] == []


def test_any_valid_id_can_be_voided(api: Api, world: World) -> None:
    # "." and ".." are refused at ingestion (tests/usage/test_strict_input.py).
    ids = {"ev.1:x-y_Z": "ev.1:x-y_Z", "...": "...", ".a": ".a", "x" * 128: "x" * 128}
    api.ingest(*(event(world.minutes, event_id) for event_id in ids))
    for event_id, in_path in ids.items():
        response = api.client.post(
            f"/usage/events/{in_path}/void", headers=api.auth(api.platform_key)
        )
        assert response.status_code == 200, (event_id, response.text)
        assert response.json()["data"]["id"] == event_id
    usage = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert usage["totalMinutesUsed"] == 3  # only the fixture's event is left


def test_voiding_a_test_event_is_allowed(api: Api, world: World) -> None:
    assert _void_data(api, "ev-stored-test")["id"] == "ev-stored-test"


# --- late events ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred", "start", "end"),
    [
        ("2025-06-15T12:00:00Z", "2025-06-01", "2025-07-01"),
        ("2019-12-31T23:59:59.999999Z", "2019-12-01", "2020-01-01"),
        ("2000-03-01T00:00:00+01:00", "2000-02-01", "2000-03-01"),
        # The start of history (TALLY_HISTORY_START), the earliest accepted instant.
        ("2000-01-01T00:00:00Z", "2000-01-01", "2000-02-01"),
        ("2000-01-01T01:00:00+01:00", "2000-01-01", "2000-02-01"),
    ],
)
def test_late_events_count_in_their_period(
    api: Api, world: World, occurred: str, start: str, end: str
) -> None:
    api.ingest(event(world.minutes, "ev-late", occurredAt=occurred, interviewId="iv-late"))
    usage = company_usage(api, world.minutes, start, end)
    assert usage["totalMinutesUsed"] == 10
    assert usage["totalInterviews"] == 1
    assert usage["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 1, "minutesUsed": 10}
    ]
    # Not in the period right after it, nor in the default window.
    assert company_usage(api, world.minutes, end, "2026-01-01")["totalMinutesUsed"] == 0


def test_a_late_event_moves_its_interview_back(api: Api, world: World) -> None:
    api.ingest(
        event(world.minutes, "ev-mar", interviewId="iv-y", occurredAt="2026-03-05T10:00:00Z")
    )
    assert company_usage(api, world.minutes, "2026-03-01", "2026-04-01")["totalInterviews"] == 1
    api.ingest(
        event(world.minutes, "ev-jan", interviewId="iv-y", occurredAt="2026-01-05T10:00:00Z")
    )
    jan = company_usage(api, world.minutes, "2026-01-01", "2026-02-01")
    mar = company_usage(api, world.minutes, "2026-03-01", "2026-04-01")
    assert (jan["totalInterviews"], mar["totalInterviews"]) == (1, 0)
    year = company_usage(api, world.minutes, "2026-01-01", "2027-01-01")
    assert year["totalInterviews"] == 2  # iv-y and the fixture's iv-stored


# --- pricing at ingestion ------------------------------------------------------------------------


def _no_pricing(api: Api, db: Database, batch: list[dict[str, Any]], cost_key: str) -> None:
    error = rejected(api, db, batch, 422, "NO_CREDIT_PRICING")
    assert cost_key in error["message"] or cost_key in json.dumps(error["details"])


def test_credits_company_without_a_rule_is_422(api: Api, db: Database, world: World) -> None:
    batch = [
        event(world.minutes, "ev-fine"),
        event(world.credits, "ev-unpriced", costKey="sourcing_enrichment"),
    ]
    _no_pricing(api, db, batch, "sourcing_enrichment")


def test_a_rule_not_yet_in_force_does_not_price(api: Api, db: Database, world: World) -> None:
    api.rule(costKey="sourcing_enrichment", baseCost=1, effectiveFrom="2026-03-01T00:00:00Z")
    early = event(world.credits, costKey="sourcing_enrichment", occurredAt="2026-02-28T23:59:59Z")
    _no_pricing(api, db, [early], "sourcing_enrichment")
    on_time = event(world.credits, costKey="sourcing_enrichment", occurredAt="2026-03-01T00:00:00Z")
    assert api.ingest(on_time)["accepted"] == 1


def test_another_company_s_rule_does_not_price(api: Api, db: Database, world: World) -> None:
    third = api.company("Hooli", "credits")
    api.rule(costKey="sourcing_enrichment", baseCost=1, companyId=third, effectiveFrom=RULES_FROM)
    _no_pricing(
        api, db, [event(world.credits, costKey="sourcing_enrichment")], "sourcing_enrichment"
    )
    assert api.ingest(event(third, costKey="sourcing_enrichment"))["accepted"] == 1


def test_another_focus_s_rule_does_not_price(api: Api, db: Database, world: World) -> None:
    api.rule(
        costKey="sourcing_enrichment", baseCost=1, agentFocus="OUTREACH", effectiveFrom=RULES_FROM
    )
    for focus in ("SCREENING", None):
        fields = {"costKey": "sourcing_enrichment", "agentFocus": focus}
        _no_pricing(api, db, [event(world.credits, **fields)], "sourcing_enrichment")
    priced = event(world.credits, costKey="sourcing_enrichment", agentFocus="OUTREACH")
    assert api.ingest(priced)["accepted"] == 1


def test_credits_are_stored_with_the_event(api: Api, db: Database, world: World) -> None:
    row = stored_event(db, "ev-stored-2")
    assert row is not None
    assert row.credits == 12_250_000  # 5 + (24.5 - 10) * 0.5


def test_minutes_company_without_a_rule_is_accepted_unpriced(
    api: Api, db: Database, world: World
) -> None:
    fields = {"costKey": "sourcing_enrichment", "agentFocus": "OUTREACH"}
    assert api.ingest(event(world.minutes, "ev-unpriced", **fields))["accepted"] == 1
    row = stored_event(db, "ev-unpriced")
    assert row is not None
    assert row.credits is None
    assert row.pricing_rule_id is None
    usage = company_usage(api, world.minutes, "2026-02-01", "2026-03-01")
    assert "totalCreditsUsed" not in usage
    assert {entry["costKey"] for entry in usage["breakdownByCostKey"]} == {
        "interview_minutes",
        "sourcing_enrichment",
    }


def test_response_of_an_accepted_batch(api: Api, world: World) -> None:
    response = api.events(event(world.minutes))
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["error"] is None
    assert body["data"] == {"accepted": 1, "duplicates": 0}
    assert body["timestamp"].endswith("Z")
