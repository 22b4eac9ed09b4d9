"""Ingesting batches of usage events and voiding events.

A batch is all or nothing: every check runs before anything is written, and
the writes happen in the request's single transaction. The order of checks
is: the shape of each event (422 INVALID_EVENTS, every error listed), then
payload conflicts with stored or sibling events (409 EVENT_CONFLICT), then
pricing (422 NO_CREDIT_PRICING).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from tally.companies import repository as companies
from tally.core.instants import format_instant, to_micros
from tally.core.quantities import to_scaled
from tally.errors import EventConflict, InvalidEvents, NoCreditPricing, NotFound, ValidationFailed
from tally.plans import repository as plans
from tally.pricing import service as pricing
from tally.pricing.rating import credits_of
from tally.settings import get_settings
from tally.usage import repository
from tally.usage.aggregates import BucketDeltas
from tally.usage.repository import NewInterview
from tally.usage.schemas import EventIn, IdString, IngestResult
from tally.usage.shapes import ShapeChecker, Shaped
from tally.webhooks import outbox

MAX_BATCH = 1000
FUTURE_SKEW = timedelta(minutes=5)
_EVENT_ID: TypeAdapter[str] = TypeAdapter(IdString)


@dataclass(frozen=True, slots=True)
class Event:
    """An event after normalisation: equal payloads give equal values."""

    id: str
    company_id: uuid.UUID
    cost_key: str
    occurred_at: int
    minutes: int
    interview_id: str | None
    is_test: bool
    agent_focus: str | None

    @classmethod
    def from_input(cls, event: EventIn) -> "Event":
        return cls(
            id=event.id,
            company_id=event.company_id,
            cost_key=event.cost_key,
            occurred_at=to_micros(event.occurred_at),
            minutes=to_scaled(event.minutes),
            interview_id=event.interview_id,
            is_test=event.is_test,
            agent_focus=event.agent_focus,
        )

    def payload(self) -> tuple[str, uuid.UUID, str, int, int, str | None, bool, str | None]:
        """The fields, in order (what Shaped and PricedEvent begin with)."""
        return (
            self.id,
            self.company_id,
            self.cost_key,
            self.occurred_at,
            self.minutes,
            self.interview_id,
            self.is_test,
            self.agent_focus,
        )

    @classmethod
    def from_row(cls, row: Any) -> "Event":
        return cls(
            id=row.id,
            company_id=row.company_id,
            cost_key=row.cost_key,
            occurred_at=to_micros(row.occurred_at),
            minutes=row.minutes,
            interview_id=row.interview_id,
            is_test=row.is_test,
            agent_focus=row.agent_focus,
        )


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, index: int, field: str, message: str) -> None:
        self.items.append({"index": index, "field": field, "message": message})


def parse_batch(body: Any) -> list[Any]:
    """The list of raw events of a request body, or 400 VALIDATION_ERROR."""
    if not isinstance(body, dict) or set(body) != {"events"}:
        raise ValidationFailed.field("events", 'the body must be {"events": [...]}')
    raw = body["events"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise ValidationFailed.field("events", f"must be a list of 1 to {MAX_BATCH} events")
    return raw


# The fast path of the shape checks, shared by every request (tally.usage.shapes).
_SHAPES = ShapeChecker()


def _validate_shapes(raw: list[Any], errors: _Errors) -> list[Event | None]:
    parsed: list[Event | None] = []
    for index, item in enumerate(raw):
        fast = _SHAPES.fast(item) if type(item) is dict else None
        if fast is not None:
            parsed.append(Event(*fast))
            continue
        try:
            parsed.append(Event.from_input(EventIn.model_validate(item)))
        except ValidationError as exc:
            parsed.append(None)
            for error in exc.errors(include_url=False):
                field = ".".join(str(part) for part in error["loc"]) or "event"
                message = error["msg"].removeprefix("Value error, ")
                errors.add(index, field, message)
    return parsed


def _check_context(
    session: Session,
    events: list[Event | None],
    now: datetime,
    history_start: datetime,
    errors: _Errors,
) -> dict[uuid.UUID, str]:
    """Companies exist, nothing is too far in the future or before the start of
    history; returns billing systems."""
    wanted = sorted({event.company_id for event in events if event is not None}, key=_uuid_order)
    billing = companies.existing_company_ids(session, wanted)
    latest = to_micros(now + FUTURE_SKEW)
    # The past bound caps what a late event costs: it shifts at most the later
    # rows of its day, month and of the months since history_start.
    earliest = to_micros(history_start)
    too_early = f"before the start of history ({format_instant(history_start)})"
    for index, event in enumerate(events):
        if event is None:
            continue
        if event.company_id not in billing:
            errors.add(index, "companyId", "no company with this id")
        if event.occurred_at > latest:
            errors.add(index, "occurredAt", "more than 5 minutes in the future")
        elif event.occurred_at < earliest:
            errors.add(index, "occurredAt", too_early)
    return billing


def _check_interviews(events: list[Event | None], stored: dict[str, Any], errors: _Errors) -> None:
    """Every event of an interview has one company and one test flag, across batches."""
    seen: dict[str, tuple[uuid.UUID, bool]] = {
        interview_id: (row.company_id, row.is_test) for interview_id, row in stored.items()
    }
    for index, event in enumerate(events):
        if event is None or event.interview_id is None:
            continue
        known = seen.setdefault(event.interview_id, (event.company_id, event.is_test))
        if known[0] != event.company_id:
            errors.add(index, "companyId", "interview already belongs to another company")
        if known[1] != event.is_test:
            errors.add(index, "isTest", "interview has events with the other isTest value")


def _split_new(events: list[Event], stored: dict[str, Any]) -> tuple[list[tuple[int, Event]], int]:
    """New events (with their batch index) and the duplicate count; 409 on a conflict."""
    fresh: list[tuple[int, Event]] = []
    in_batch: dict[str, Event] = {}
    duplicates = 0
    conflicts: list[str] = []
    for index, event in enumerate(events):
        earlier = in_batch.get(event.id)
        if earlier is None and event.id in stored:
            earlier = Event.from_row(stored[event.id])
        if earlier is None:
            in_batch[event.id] = event
            fresh.append((index, event))
        elif earlier == event:
            duplicates += 1
        else:
            conflicts.append(event.id)
    if conflicts:
        raise EventConflict(
            "event ids already used with a different payload",
            details={"ids": sorted(set(conflicts))},
        )
    return fresh, duplicates


@dataclass(frozen=True, slots=True)
class PricedEvent(Event):
    """A new event with its price, ready to store."""

    credits: int | None
    pricing_rule_id: uuid.UUID | None
    received_at: int

    @classmethod
    def of(
        cls, event: Event, credits: int | None, rule_id: uuid.UUID | None, received: int
    ) -> "PricedEvent":
        return cls(*event.payload(), credits, rule_id, received)


def _price(
    session: Session, fresh: list[tuple[int, Event]], billing: dict[uuid.UUID, str], received: int
) -> list[PricedEvent]:
    """Rate every new event; a credits company's event without a rule is a 422."""
    book = pricing.rule_book(session, sorted({event.cost_key for _, event in fresh}))
    priced: list[PricedEvent] = []
    missing = _Errors()
    missing_keys: set[str] = set()
    for index, event in fresh:
        rule = book.rule_for(event.company_id, event.cost_key, event.agent_focus, event.occurred_at)
        if rule is None:
            if billing[event.company_id] == "credits":
                missing.add(index, "costKey", f"no pricing rule in force for {event.cost_key}")
                missing_keys.add(event.cost_key)
            priced.append(PricedEvent.of(event, None, None, received))
        else:
            credits = credits_of(rule, event.minutes)
            priced.append(PricedEvent.of(event, credits, rule.id, received))
    if missing.items:
        cost_keys = sorted(missing_keys)
        raise NoCreditPricing(
            "no pricing rule in force for " + ", ".join(cost_keys),
            details={"costKeys": cost_keys, "errors": missing.items},
        )
    return priced


@dataclass
class _First:
    """An interview's first counted event: (instant, event id) orders them."""

    at: int
    event_id: str
    cost_key: str


def _write(session: Session, priced: list[PricedEvent], stored_interviews: dict[str, Any]) -> None:
    repository.insert_events(session, priced)
    count(session, priced, stored_interviews)


def count(
    session: Session, priced: Sequence[repository.CountedRow], stored_interviews: dict[str, Any]
) -> None:
    """Count events just stored: their interviews' first counted events and the
    running totals (ingestion and the bulk import both come here).

    `stored_interviews` holds the rows of the events' interviews as they were
    before these events (repository.stored_interviews).
    """
    deltas = BucketDeltas()
    original: dict[str, _First | None] = {}
    best: dict[str, _First | None] = {}
    owner: dict[str, tuple[uuid.UUID, bool]] = {}
    for row_id, row in stored_interviews.items():
        first = (
            _First(to_micros(row.first_counted_at), row.first_event_id, row.first_cost_key)
            if row.first_counted_at is not None
            else None
        )
        original[row_id] = best[row_id] = first
    for event in priced:
        if event.interview_id is not None:
            owner.setdefault(event.interview_id, (event.company_id, event.is_test))
            best.setdefault(event.interview_id, None)
        if event.is_test:
            continue
        deltas.event(
            event.company_id,
            event.cost_key,
            event.occurred_at,
            event.minutes,
            event.credits or 0,
            1,
        )
        if event.interview_id is not None:
            current = best[event.interview_id]
            if current is None or (event.occurred_at, event.id) < (current.at, current.event_id):
                best[event.interview_id] = _First(event.occurred_at, event.id, event.cost_key)
    _write_interviews(session, deltas, original, best, owner, stored_interviews)
    repository.apply_bucket_deltas(session, deltas)


def _write_interviews(
    session: Session,
    deltas: BucketDeltas,
    original: dict[str, "_First | None"],
    best: dict[str, "_First | None"],
    owner: dict[str, tuple[uuid.UUID, bool]],
    stored: dict[str, Any],
) -> None:
    """Insert new interviews, move the first-counted mark of existing ones."""
    new_rows: list[NewInterview] = []
    moved: list[dict[str, Any]] = []
    for interview_id, first in best.items():
        before = original.get(interview_id)
        if interview_id in stored:
            company_id = stored[interview_id].company_id
        else:
            company_id, is_test = owner[interview_id]
            new_rows.append(_interview_row(interview_id, company_id, is_test, first))
        if first is before or first is None:
            continue
        if before is not None:
            deltas.interview(company_id, before.cost_key, before.at, -1)
        deltas.interview(company_id, first.cost_key, first.at, 1)
        if interview_id in stored:
            moved.append(
                {
                    "b_id": interview_id,
                    "first_event_id": first.event_id,
                    "first_counted_at": first.at,
                    "first_cost_key": first.cost_key,
                }
            )
    repository.insert_interviews(session, new_rows)
    repository.set_first_events(session, moved)


def _interview_row(
    interview_id: str, company_id: uuid.UUID, is_test: bool, first: "_First | None"
) -> NewInterview:
    if first is None:
        return (interview_id, company_id, is_test, None, None, None)
    return (interview_id, company_id, is_test, first.event_id, first.at, first.cost_key)


def _uuid_order(value: uuid.UUID) -> int:
    """UUIDs in their own order, compared as ints (UUID.__lt__ runs in Python)."""
    return value.int


@dataclass
class ParsedBatch:
    """A batch after the checks that need no database: one entry per event."""

    events: list[Event | None]
    errors: _Errors

    def company_ids(self) -> list[uuid.UUID]:
        """The companies the batch names, in lock order."""
        return sorted(
            {event.company_id for event in self.events if event is not None}, key=_uuid_order
        )


def parse(body: Any) -> ParsedBatch:
    """Shape checks only (no database), so they run before any lock is taken."""
    errors = _Errors()
    return ParsedBatch(_validate_shapes(parse_batch(body), errors), errors)


def shape_of(raw: Any) -> Shaped | str:
    """One event after its shape checks, or the reasons it is invalid
    ("field: message; ..."), as a batch holding it alone would give them."""
    batch = parse({"events": [raw]})
    event = batch.events[0]
    if event is None:
        return "; ".join(f"{e['field']}: {e['message']}" for e in batch.errors.items)
    return Shaped(*event.payload())


def store(
    session: Session, batch: ParsedBatch, now: datetime, history_start: datetime | None = None
) -> IngestResult:
    """Store a parsed batch atomically: every new event, or none (see module docstring).

    The batch's companies are locked first (PostgreSQL), so every read below
    sees the latest committed totals of those companies and nobody else
    writes them until this transaction ends.
    """
    parsed, errors = batch.events, _Errors()
    # A copy: a transaction retried after a collision starts from the parse's errors.
    errors.items = list(batch.errors.items)
    valid = [event for event in parsed if event is not None]
    interview_ids = sorted({e.interview_id for e in valid if e.interview_id is not None})
    repository.lock_companies(session, batch.company_ids())
    start = history_start if history_start is not None else get_settings().history_start
    billing = _check_context(session, parsed, now, start, errors)
    stored_interviews = repository.stored_interviews(session, interview_ids)
    _check_interviews(parsed, stored_interviews, errors)
    if errors.items:
        raise InvalidEvents(
            f"{len({item['index'] for item in errors.items})} invalid event(s); nothing stored",
            details={"errors": errors.items},
        )
    stored = repository.stored_events(session, sorted({event.id for event in valid}))
    fresh, duplicates = _split_new(valid, stored)
    priced = _price(session, fresh, billing, to_micros(now))
    _write(session, priced, stored_interviews)
    outbox.record_crossings(session, priced, now)
    return IngestResult(accepted=len(fresh), duplicates=duplicates)


def ingest(
    session: Session, body: Any, now: datetime, history_start: datetime | None = None
) -> IngestResult:
    """Parse and store a batch (the API, the importer and the demo all come here)."""
    return store(session, parse(body), now, history_start)


def event_company(session: Session, event_id: str) -> uuid.UUID | None:
    """The company of a stored event (an event never changes company)."""
    row = repository.get_event(session, event_id)
    return None if row is None else uuid.UUID(str(row.company_id))


def void(session: Session, event_id: str, now: datetime) -> tuple[str, datetime]:
    """Mark an event void (idempotent); it stops counting everywhere."""
    try:
        _EVENT_ID.validate_python(event_id)
    except ValidationError as exc:
        # No event can have this id (a NUL, which PostgreSQL cannot even compare): unknown.
        raise NotFound("no event with this id") from exc
    row = repository.get_event(session, event_id)
    if row is None:
        raise NotFound(f"no event with id {event_id}")
    # Its company's lock, then the row again: a concurrent void may have won.
    repository.lock_companies(session, [row.company_id])
    row = repository.get_event(session, event_id)
    if row is None:
        raise NotFound(f"no event with id {event_id}")
    if row.voided_at is not None:
        return row.id, row.voided_at
    repository.mark_voided(session, event_id, to_micros(now))
    if not row.is_test:
        _uncount(session, row)
        # What the outbox counted for its plan's period no longer holds.
        plans.forget_used(session, [row.company_id])
    return row.id, now


def _uncount(session: Session, row: Any) -> None:
    deltas = BucketDeltas()
    at = to_micros(row.occurred_at)
    deltas.event(row.company_id, row.cost_key, at, row.minutes, row.credits or 0, -1)
    if row.interview_id is not None:
        interview = repository.stored_interviews(session, [row.interview_id])[row.interview_id]
        if interview.first_event_id == row.id:
            deltas.interview(row.company_id, row.cost_key, at, -1)
            successor = repository.first_counted_event(session, row.interview_id)
            update: dict[str, Any] = {
                "b_id": row.interview_id,
                "first_event_id": None,
                "first_counted_at": None,
                "first_cost_key": None,
            }
            if successor is not None:
                next_at = to_micros(successor.occurred_at)
                deltas.interview(row.company_id, successor.cost_key, next_at, 1)
                update |= {
                    "first_event_id": successor.id,
                    "first_counted_at": next_at,
                    "first_cost_key": successor.cost_key,
                }
            repository.set_first_events(session, [update])
    repository.apply_bucket_deltas(session, deltas)
