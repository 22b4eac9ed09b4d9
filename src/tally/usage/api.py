"""Routes: ingestion, voids and GET /billing/usage."""

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic.json_schema import SkipJsonSchema

from tally.auth.tenancy import visible_companies
from tally.bodies import raw_json
from tally.core.envelope import (
    AUTHENTICATED,
    WITH_BODY,
    Envelope,
    EnvelopeResponse,
    error_responses,
    success,
)
from tally.core.http import parse_uuid
from tally.core.instants import OUT_OF_RANGE, InstantError, parse_instant, utcnow
from tally.deps import DbSession, UsageReader, UsageWriter
from tally.errors import InvalidDateRange, ValidationFailed
from tally.observability.metrics import record_ingest_on_commit
from tally.usage import ingest, report
from tally.usage.schemas import ID_PATTERN, EventBatchIn, IngestResult, UsageReport, VoidResult

router = APIRouter(tags=["usage"], responses=error_responses(*AUTHENTICATED))
DEFAULT_WINDOW = timedelta(days=30)

# Query values are strings parsed by tally (exact instants, UUIDs with a
# field-naming 400); None is their absence, never a value to send.
InstantQuery = str | SkipJsonSchema[None]


def _instant(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value, require_offset=False)
    except InstantError as exc:
        raise ValidationFailed.field(field, str(exc)) from exc


def resolve_window(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) from the query; end defaults to now, start to end minus 30 days."""
    resolved_end = _instant(end, "end") or now
    resolved_start = _instant(start, "start")
    if resolved_start is None:
        try:
            resolved_start = resolved_end - DEFAULT_WINDOW
        except OverflowError as exc:
            raise ValidationFailed.field("end", OUT_OF_RANGE) from exc
    if resolved_start >= resolved_end:
        raise InvalidDateRange("start must be before end")
    return resolved_start, resolved_end


@router.get("/billing/usage", response_model=Envelope[UsageReport])
def get_usage(
    principal: UsageReader,
    session: DbSession,
    start: Annotated[
        InstantQuery, Query(description="inclusive; ISO 8601 (default: end minus 30 days)")
    ] = None,
    end: Annotated[InstantQuery, Query(description="exclusive; ISO 8601 (default: now)")] = None,
    company_id: Annotated[
        str | SkipJsonSchema[None],
        Query(
            alias="companyId",
            description="narrow to one company",
            json_schema_extra={"format": "uuid"},
        ),
    ] = None,
) -> EnvelopeResponse:
    """Usage per company and cost key over [start, end)."""
    window = resolve_window(start, end, utcnow())
    requested = parse_uuid(company_id, "companyId") if company_id is not None else None
    companies = visible_companies(session, principal, requested)
    return success(report.usage_report(session, companies, *window))


def _parsed_batch(body: Annotated[Any, Depends(raw_json)]) -> ingest.ParsedBatch:
    # Declared before the session: the CPU-bound checks run before the
    # request's transaction takes the database's write lock.
    return ingest.parse(body)


# Parsed by hand (exact decimals, per-index errors); documented by this model.
_parsed_batch.body_model = EventBatchIn  # type: ignore[attr-defined]


@router.post(
    "/usage/events",
    response_model=Envelope[IngestResult],
    responses=error_responses(*WITH_BODY, 409, 422),
)
def post_events(
    _principal: UsageWriter,
    batch: Annotated[ingest.ParsedBatch, Depends(_parsed_batch)],
    session: DbSession,
) -> EnvelopeResponse:
    """Ingest a batch of 1 to 1,000 usage events, atomically and idempotently."""
    result = ingest.store(session, batch, utcnow())
    record_ingest_on_commit(session, result.accepted, result.duplicates)
    return success(result)


@router.post(
    "/usage/events/{event_id}/void",
    response_model=Envelope[VoidResult],
    responses=error_responses(404),
)
def void_event(
    _principal: UsageWriter,
    session: DbSession,
    event_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> EnvelopeResponse:
    """Void an event: it stays stored but stops counting everywhere."""
    event_id_out, voided_at = ingest.void(session, event_id, utcnow())
    return success(VoidResult(id=event_id_out, voided_at=voided_at))
