"""Storing a chunk of imported events set-based, atomically with its totals.

The checks and their order are those of POST /usage/events (tally.usage.ingest),
applied line by line instead of to a whole batch: the shape of each event,
then its company, instant and interview, then its id against stored events
and earlier lines of the chunk, then its price. A line that fails is rejected
with the reasons ingestion gives; the other lines go on.

The surviving lines are written to a temporary staging table in one bulk
statement (PostgreSQL COPY, SQLite executemany on the driver), joined to
usage_events to tell duplicates and conflicts apart, and moved into
usage_events by one INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING id:
what it returns is what this chunk added. Interviews, the running totals
(apply_bucket_deltas) and the webhook crossings follow from those events
only, in the same transaction, so a chunk is committed whole with its totals
or not at all.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy.orm import Session

from tally.companies import repository as companies
from tally.core.instants import format_instant, to_micros
from tally.db.driver import Driver
from tally.usage import ingest, repository
from tally.usage.ingest import FUTURE_SKEW
from tally.usage.pricebook import PriceBook
from tally.usage.shapes import ShapeChecker, Shaped
from tally.webhooks import outbox

STAGE = "tally_import_stage"
STAGED_COLUMNS = repository.EVENT_COLUMNS[:-1]  # all but voided_at
PAYLOAD = 8  # id .. agent_focus: what two events must share to be duplicates
CONFLICT = "id: already used with a different payload"
Item = tuple[int, dict[str, Any]]  # line number, the event as read


@dataclass(frozen=True, order=True)
class Rejection:
    line: int
    reason: str


class Priced(NamedTuple):
    """A new event with its price (what record_crossings and the totals need)."""

    id: str
    company_id: uuid.UUID
    cost_key: str
    occurred_at: int
    minutes: int
    interview_id: str | None
    is_test: bool
    agent_focus: str | None
    credits: int | None


@dataclass
class ChunkResult:
    accepted: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    # A few ids the chunk stored or found stored: a resumed import checks them.
    witnesses: list[str] = field(default_factory=list)


@dataclass
class _Candidate:
    line: int
    event: Shaped
    row: tuple[Any, ...] | None  # the staged row; None when no rule prices it
    priced: Priced | None


class ChunkWriter:
    """Stores chunks of one import; keeps what it learnt across chunks."""

    def __init__(self, history_start: datetime) -> None:
        self.shapes = ShapeChecker()
        self.history_start = history_start

    def store(self, session: Session, items: Sequence[Item], now: datetime) -> ChunkResult:
        """Store the chunk's valid new events; everything else is counted or rejected."""
        result = ChunkResult()
        shaped: list[tuple[int, Shaped]] = []
        for line, raw in items:
            checked = self.shapes.fast(raw) or ingest.shape_of(raw)
            if isinstance(checked, str):
                result.rejections.append(Rejection(line, checked))
            else:
                shaped.append((line, checked))
        repository.lock_companies(session, {event.company_id for _, event in shaped})
        wanted = sorted({event.company_id for _, event in shaped})
        billing = companies.existing_company_ids(session, wanted)
        interview_ids = sorted({e.interview_id for _, e in shaped if e.interview_id is not None})
        interviews = repository.stored_interviews(session, interview_ids)
        valid = self._in_context(shaped, billing, interviews, now, result)
        first, repeats = _first_occurrences(valid)
        candidates = _price(session, first, billing, now)
        stage = _Stage(session)
        stored = stage.stored([c.row for c in candidates if c.row is not None])
        stored |= _stored_unpriced(session, [c for c in candidates if c.row is None])
        fresh, outcome = _classify(candidates, stored, result)
        inserted = stage.insert([c.row for c in fresh if c.row is not None])
        new = [c.priced for c in fresh if c.priced is not None and c.event.id in inserted]
        for candidate in fresh:
            if candidate.event.id not in inserted:  # another writer stored it meanwhile
                again = repository.stored_events(session, [candidate.event.id])
                outcome[candidate.event.id] = _against_stored(candidate, again, result)
        _resolve_repeats(repeats, first, outcome, result)
        result.accepted = len(new)
        ingest.count(session, new, interviews)
        outbox.record_crossings(session, new, now)
        result.witnesses = sorted(stored)[-2:] + [event.id for event in new[-2:]]
        return result

    def _in_context(
        self,
        shaped: list[tuple[int, Shaped]],
        billing: dict[uuid.UUID, str],
        interviews: dict[str, Any],
        now: datetime,
        result: ChunkResult,
    ) -> list[tuple[int, Shaped]]:
        """Company, instant and interview checks, with ingestion's messages."""
        latest = to_micros(now + FUTURE_SKEW)
        earliest = to_micros(self.history_start)
        too_early = (
            f"occurredAt: before the start of history ({format_instant(self.history_start)})"
        )
        # Companies compared as ints: uuid.UUID hashes and compares in Python.
        known_companies = {company.int for company in billing}
        seen = {key: (row.company_id.int, row.is_test) for key, row in interviews.items()}
        valid: list[tuple[int, Shaped]] = []
        for line, event in shaped:
            reasons: list[str] = []
            company = event.company_id.int
            if company not in known_companies:
                reasons.append("companyId: no company with this id")
            if event.occurred_at > latest:
                reasons.append("occurredAt: more than 5 minutes in the future")
            elif event.occurred_at < earliest:
                reasons.append(too_early)
            if event.interview_id is not None:
                known = seen.setdefault(event.interview_id, (company, event.is_test))
                if known[0] != company:
                    reasons.append("companyId: interview already belongs to another company")
                if known[1] != event.is_test:
                    reasons.append("isTest: interview has events with the other isTest value")
            if reasons:
                result.rejections.append(Rejection(line, "; ".join(reasons)))
            else:
                valid.append((line, event))
        return valid


def _price(
    session: Session, first: list[tuple[int, Shaped]], billing: dict[uuid.UUID, str], now: datetime
) -> list[_Candidate]:
    """Each first line with its price and staged row (none without a rule)."""
    book = PriceBook(session, {event.cost_key for _, event in first})
    received = to_micros(now)
    sqlite = session.get_bind().dialect.name == "sqlite"
    # What the driver stores for a UUID: 32 hex digits on SQLite, itself on PostgreSQL.
    stored_as: dict[int, Any] = {}  # by the company's int
    rule_as: dict[int, Any] = {}  # by id() of the rule's id
    systems = {company.int: system for company, system in billing.items()}
    candidates: list[_Candidate] = []
    for line, e in first:
        price = book.price(e.company_id, e.cost_key, e.agent_focus, e.occurred_at, e.minutes)
        rule_id, credits = (price[0].id, price[1]) if price is not None else (None, None)
        number = e.company_id.int
        if price is None and systems[number] == "credits":
            candidates.append(_Candidate(line, e, None, None))
            continue
        company = stored_as.get(number)
        if company is None:
            company = stored_as[number] = e.company_id.hex if sqlite else e.company_id
        rule = rule_as.get(id(rule_id)) if rule_id is not None else None
        if rule is None and rule_id is not None:
            rule = rule_as[id(rule_id)] = rule_id.hex if sqlite else rule_id
        flag: Any = int(e.is_test) if sqlite else e.is_test
        row: tuple[Any, ...] = (e.id, company, e.cost_key, e.occurred_at, e.minutes)
        row += (e.interview_id, flag, e.agent_focus, credits, rule, received)
        candidates.append(_Candidate(line, e, row, Priced(*e, credits)))
    return candidates


def _first_occurrences(
    valid: list[tuple[int, Shaped]],
) -> tuple[list[tuple[int, Shaped]], list[tuple[int, Shaped]]]:
    """The first line of each id, and the later lines repeating an id."""
    first: dict[str, tuple[int, Shaped]] = {}
    repeats: list[tuple[int, Shaped]] = []
    for line, event in valid:
        if event.id in first:
            repeats.append((line, event))
        else:
            first[event.id] = (line, event)
    return list(first.values()), repeats


def _stored_unpriced(session: Session, unpriced: list[_Candidate]) -> dict[str, tuple[Any, ...]]:
    """Stored payloads of the ids no rule prices (rare: looked up by id)."""
    rows = repository.stored_events(session, [c.event.id for c in unpriced])
    return {key: tuple(_payload(row)) for key, row in rows.items()}


def _payload(row: Any) -> Shaped:
    return Shaped(
        row.id,
        row.company_id,
        row.cost_key,
        to_micros(row.occurred_at),
        row.minutes,
        row.interview_id,
        row.is_test,
        row.agent_focus,
    )


# What became of each first occurrence: "new", "duplicate" or its rejection.
Outcome = dict[str, str | Rejection]


def _classify(
    candidates: list[_Candidate], stored: dict[str, tuple[Any, ...]], result: ChunkResult
) -> tuple[list[_Candidate], Outcome]:
    fresh: list[_Candidate] = []
    outcome: Outcome = {}
    for candidate in candidates:
        key = candidate.event.id
        if key in stored:
            mine = candidate.row[:PAYLOAD] if candidate.row is not None else candidate.event
            outcome[key] = _compare(candidate.line, tuple(mine), stored[key], result)
        elif candidate.row is None:
            reason = f"costKey: no pricing rule in force for {candidate.event.cost_key}"
            outcome[key] = Rejection(candidate.line, reason)
            result.rejections.append(outcome[key])  # type: ignore[arg-type]
        else:
            outcome[key] = "new"
            fresh.append(candidate)
    return fresh, outcome


def _compare(
    line: int, mine: tuple[Any, ...], theirs: tuple[Any, ...], result: ChunkResult
) -> str | Rejection:
    if mine == tuple(theirs[:PAYLOAD]):
        result.duplicates += 1
        return "duplicate"
    rejection = Rejection(line, CONFLICT)
    result.rejections.append(rejection)
    return rejection


def _against_stored(candidate: _Candidate, rows: dict[str, Any], result: ChunkResult) -> Any:
    row = rows.get(candidate.event.id)
    if row is None:  # pragma: no cover - ON CONFLICT skipped it, so it is stored
        raise RuntimeError(f"event {candidate.event.id} neither inserted nor stored")
    return _compare(candidate.line, tuple(candidate.event), tuple(_payload(row)), result)


def _resolve_repeats(
    repeats: list[tuple[int, Shaped]],
    first: list[tuple[int, Shaped]],
    outcome: Outcome,
    result: ChunkResult,
) -> None:
    """A later line of an id: a duplicate of what its first line became, or a conflict."""
    events = {event.id: event for _, event in first}
    for line, event in repeats:
        earlier = outcome.get(event.id)
        if event != events[event.id]:
            result.rejections.append(Rejection(line, CONFLICT))
        elif isinstance(earlier, Rejection):
            result.rejections.append(Rejection(line, earlier.reason))
        else:
            result.duplicates += 1


class _Stage:
    """The chunk's rows in a temporary table, and the two statements over it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.dbapi: Any = cast(Any, session.connection().connection.dbapi_connection)
        columns = ", ".join(STAGED_COLUMNS)
        query = f"AS SELECT {columns} FROM usage_events WHERE 1 = 0"  # noqa: S608 - constants
        Driver(session).empty_temp_table(STAGE, query=query)

    def stored(self, rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        """Stage the rows; the stored payload of each of their ids already stored."""
        if not rows:
            return {}
        columns = ", ".join(STAGED_COLUMNS)
        payload = ", ".join(f"u.{name}" for name in STAGED_COLUMNS[:PAYLOAD])
        cursor = self.dbapi.cursor()
        try:
            if self.sqlite:
                marks = ", ".join("?" * len(STAGED_COLUMNS))
                cursor.executemany(f"INSERT INTO {STAGE} VALUES ({marks})", rows)  # noqa: S608
            else:
                with cursor.copy(f"COPY {STAGE} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cursor.execute(
                f"SELECT {payload} FROM {STAGE} s JOIN usage_events u ON u.id = s.id"  # noqa: S608
            )
            return {row[0]: tuple(row) for row in cursor.fetchall()}
        finally:
            cursor.close()

    def insert(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """Move the staged new rows into usage_events; the ids inserted."""
        if not rows:
            return set()
        columns = ", ".join(STAGED_COLUMNS)
        cursor = self.dbapi.cursor()
        try:
            # In id order: two writers inserting a shared new id wait for one
            # another instead of deadlocking (tally.db.failures). WHERE true:
            # SQLite's parser needs it before an upsert clause.
            cursor.execute(
                f"INSERT INTO usage_events ({columns}) SELECT {columns} FROM {STAGE}"  # noqa: S608
                " WHERE true ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id"
            )
            return {row[0] for row in cursor.fetchall()}
        finally:
            cursor.close()
