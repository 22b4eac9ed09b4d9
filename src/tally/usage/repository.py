"""SQL for usage events, interviews and buckets."""

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.usage.models import Interview, UsageBucket, UsageEvent

# Keeps IN lists well under SQLite's bound-parameter limit.
CHUNK = 500

events: Table = UsageEvent.__table__  # type: ignore[assignment]
interviews: Table = Interview.__table__  # type: ignore[assignment]
buckets: Table = UsageBucket.__table__  # type: ignore[assignment]


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _advisory_id(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


def lock_ids(session: Session, ids: Iterable[str]) -> None:
    """Serialise concurrent writers that touch the same event or interview ids.

    On PostgreSQL, transaction-scoped advisory locks taken in sorted order
    (so two batches cannot deadlock); SQLite already serialises every writing
    transaction with BEGIN IMMEDIATE.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({_advisory_id(item) for item in ids})
    if keys:
        session.execute(select(func.pg_advisory_xact_lock(func.unnest(postgresql.array(keys)))))


def stored_events(session: Session, ids: Sequence[str]) -> dict[str, Row[Any]]:
    found: dict[str, Row[Any]] = {}
    for part in chunks(ids):
        for row in session.execute(select(events).where(events.c.id.in_(part))):
            found[row.id] = row
    return found


def stored_interviews(session: Session, ids: Sequence[str]) -> dict[str, Row[Any]]:
    found: dict[str, Row[Any]] = {}
    for part in chunks(ids):
        for row in session.execute(select(interviews).where(interviews.c.id.in_(part))):
            found[row.id] = row
    return found


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(events), rows)


def insert_interviews(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(interviews), rows)


def set_first_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Rows of {b_id, first_event_id, first_counted_at, first_cost_key}."""
    if rows:
        session.execute(
            update(interviews)
            .where(interviews.c.id == bindparam("b_id"))
            .values(
                first_event_id=bindparam("first_event_id"),
                first_counted_at=bindparam("first_counted_at"),
                first_cost_key=bindparam("first_cost_key"),
            ),
            rows,
            execution_options={"synchronize_session": False},
        )


def apply_bucket_deltas(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add the deltas to the buckets, creating missing rows (one upsert)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(buckets)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[
            buckets.c.company_id,
            buckets.c.granularity,
            buckets.c.bucket_start,
            buckets.c.cost_key,
        ],
        set_={
            "events": buckets.c.events + excluded.events,
            "minutes": buckets.c.minutes + excluded.minutes,
            "credits": buckets.c.credits + excluded.credits,
            "interviews": buckets.c.interviews + excluded.interviews,
        },
    )
    session.execute(statement, rows)


def get_event(session: Session, event_id: str) -> Row[Any, Any, Any] | None:
    return session.execute(select(events).where(events.c.id == event_id)).first()


def mark_voided(session: Session, event_id: str, at: int) -> None:
    session.execute(update(events).where(events.c.id == event_id).values(voided_at=at))


def first_counted_event(session: Session, interview_id: str) -> Row[Any, Any, Any] | None:
    """The interview's earliest event that is neither a test nor voided."""
    return session.execute(
        select(events.c.id, events.c.occurred_at, events.c.cost_key)
        .where(
            events.c.interview_id == interview_id,
            events.c.is_test.is_(False),
            events.c.voided_at.is_(None),
        )
        .order_by(events.c.occurred_at, events.c.id)
        .limit(1)
    ).first()


def _ranges(column: Any, ranges: Sequence[tuple[int, int]]) -> Any:
    return or_(*(and_(column >= low, column < high) for low, high in ranges))


def bucket_sums(
    session: Session, company_ids: Sequence[uuid.UUID], ranges: Sequence[tuple[int, int, int]]
) -> list[Row[Any]]:
    """Sums per company and cost key over buckets of (granularity, start range)."""
    if not ranges:
        return []
    result: list[Row[Any]] = []
    for part in chunks(company_ids):
        parts = [
            select(
                buckets.c.company_id,
                buckets.c.cost_key,
                buckets.c.events,
                buckets.c.minutes,
                buckets.c.credits,
                buckets.c.interviews,
            ).where(
                buckets.c.company_id.in_(part),
                buckets.c.granularity == granularity,
                buckets.c.bucket_start >= low,
                buckets.c.bucket_start < high,
            )
            for granularity, low, high in ranges
        ]
        union = parts[0].union_all(*parts[1:]).subquery() if len(parts) > 1 else parts[0].subquery()
        result.extend(
            session.execute(
                select(
                    union.c.company_id,
                    union.c.cost_key,
                    func.sum(union.c.events).label("events"),
                    func.sum(union.c.minutes).label("minutes"),
                    func.sum(union.c.credits).label("credits"),
                    func.sum(union.c.interviews).label("interviews"),
                ).group_by(union.c.company_id, union.c.cost_key)
            )
        )
    return result


def raw_sums(
    session: Session, company_ids: Sequence[uuid.UUID], ranges: Sequence[tuple[int, int]]
) -> list[Row[Any]]:
    """Sums per company and cost key over the counted raw events in the ranges."""
    if not ranges:
        return []
    result: list[Row[Any]] = []
    for part in chunks(company_ids):
        result.extend(
            session.execute(
                select(
                    events.c.company_id,
                    events.c.cost_key,
                    func.count().label("events"),
                    func.sum(events.c.minutes).label("minutes"),
                    func.sum(func.coalesce(events.c.credits, 0)).label("credits"),
                )
                .where(
                    events.c.company_id.in_(part),
                    _ranges(events.c.occurred_at, ranges),
                    events.c.is_test.is_(False),
                    events.c.voided_at.is_(None),
                )
                .group_by(events.c.company_id, events.c.cost_key)
            )
        )
    return result


def raw_interview_counts(
    session: Session, company_ids: Sequence[uuid.UUID], ranges: Sequence[tuple[int, int]]
) -> list[Row[Any]]:
    """Interviews per company whose first counted event lies in the ranges."""
    if not ranges:
        return []
    result: list[Row[Any]] = []
    for part in chunks(company_ids):
        result.extend(
            session.execute(
                select(interviews.c.company_id, func.count().label("interviews"))
                .where(
                    interviews.c.company_id.in_(part),
                    _ranges(interviews.c.first_counted_at, ranges),
                )
                .group_by(interviews.c.company_id)
            )
        )
    return result
