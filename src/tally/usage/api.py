"""Routes: ingestion, voids and GET /billing/usage."""

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from tally.auth.tenancy import visible_companies
from tally.core.envelope import EnvelopeResponse, success
from tally.core.http import json_body, parse_uuid
from tally.core.instants import OUT_OF_RANGE, InstantError, parse_instant, utcnow
from tally.deps import DbSession, UsageReader, UsageWriter
from tally.errors import InvalidDateRange, ValidationFailed
from tally.reporting.usage import usage_report
from tally.usage import ingest
from tally.usage.schemas import EventBatchIn, IngestResult, UsageReport, VoidResult

router = APIRouter(tags=["usage"])
DEFAULT_WINDOW = timedelta(days=30)


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


@router.get(
    "/billing/usage",
    response_class=EnvelopeResponse,
    responses={200: {"model": UsageReport, "description": "usage in the envelope's data"}},
)
def get_usage(
    principal: UsageReader,
    session: DbSession,
    start: Annotated[str | None, Query(description="inclusive; ISO 8601")] = None,
    end: Annotated[str | None, Query(description="exclusive; ISO 8601")] = None,
    company_id: Annotated[str | None, Query(alias="companyId")] = None,
) -> EnvelopeResponse:
    """Usage per company and cost key over [start, end)."""
    window = resolve_window(start, end, utcnow())
    requested = parse_uuid(company_id, "companyId") if company_id is not None else None
    companies = visible_companies(session, principal, requested)
    return success(usage_report(session, companies, *window))


def _parsed_batch(body: Annotated[Any, Depends(json_body)]) -> ingest.ParsedBatch:
    # Declared before the session: the CPU-bound checks run before the
    # request's transaction takes the database's write lock.
    return ingest.parse(body)


@router.post(
    "/usage/events",
    response_class=EnvelopeResponse,
    responses={200: {"model": IngestResult}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventBatchIn.model_json_schema()}},
        }
    },
)
def post_events(
    _principal: UsageWriter,
    batch: Annotated[ingest.ParsedBatch, Depends(_parsed_batch)],
    session: DbSession,
) -> EnvelopeResponse:
    """Ingest a batch of 1 to 1,000 usage events, atomically and idempotently."""
    result = ingest.store(session, batch, utcnow())
    return success(result.model_dump())


@router.post(
    "/usage/events/{event_id}/void",
    response_class=EnvelopeResponse,
    responses={200: {"model": VoidResult}},
)
def void_event(
    _principal: UsageWriter,
    session: DbSession,
    event_id: Annotated[str, Path(max_length=128)],
) -> EnvelopeResponse:
    """Void an event: it stays stored but stops counting everywhere."""
    event_id_out, voided_at = ingest.void(session, event_id, utcnow())
    return success(VoidResult(id=event_id_out, voided_at=voided_at).model_dump(by_alias=True))
