"""Routes: ingestion and voids (GET /billing/usage is in tally.reporting.api)."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy.orm import Session

from tally.core.envelope import (
    AUTHENTICATED,
    WITH_BODY,
    Envelope,
    EnvelopeResponse,
    error_responses,
    success,
)
from tally.core.http import check_json_content_type, parse_json
from tally.core.instants import OUT_OF_RANGE, InstantError, parse_instant, utcnow
from tally.deps import (
    UsageWriter,
    get_database,
    get_settings_dep,
    get_write_gate,
    write_transaction,
)
from tally.errors import InvalidDateRange, ValidationFailed
from tally.observability.metrics import record_ingest_on_commit
from tally.usage import ingest
from tally.usage.schemas import ID_PATTERN, EventBatchIn, IngestResult, VoidResult

router = APIRouter(tags=["usage"], responses=error_responses(*AUTHENTICATED))
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


async def _parsed_batch(_principal: UsageWriter, request: Request) -> ingest.ParsedBatch:
    # After authentication (the principal comes first): no body is read for a
    # caller without a valid key. Decoding and checking up to 1,000 events is
    # CPU work: in a worker thread, off the event loop (which must keep
    # answering /healthz), and before the write turn is waited for, so the
    # transaction holds its locks only to write.
    check_json_content_type(request.headers.get("content-type"))
    raw = await request.body()
    return await get_write_gate(request).decode(lambda: ingest.parse(parse_json(raw)))


# Parsed by hand (exact decimals, per-index errors); documented by this model.
_parsed_batch.body_model = EventBatchIn  # type: ignore[attr-defined]


@router.post(
    "/usage/events",
    response_model=Envelope[IngestResult],
    responses=error_responses(*WITH_BODY, 409, 422),
)
async def post_events(
    request: Request,
    _principal: UsageWriter,
    batch: Annotated[ingest.ParsedBatch, Depends(_parsed_batch)],
) -> EnvelopeResponse:
    """Ingest a batch of 1 to 1,000 usage events, atomically and idempotently."""
    history_start = get_settings_dep(request).history_start

    def work(session: Session) -> IngestResult:
        result = ingest.store(session, batch, utcnow(), history_start)
        record_ingest_on_commit(session, result.accepted, result.duplicates)
        return result

    return success(await write_transaction(request, batch.company_ids(), work))


@router.post(
    "/usage/events/{event_id}/void",
    response_model=Envelope[VoidResult],
    responses=error_responses(404),
)
async def void_event(
    request: Request,
    _principal: UsageWriter,
    event_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> EnvelopeResponse:
    """Void an event: it stays stored but stops counting everywhere."""
    # Which company's turn to wait for: one indexed lookup, on the loop.
    with get_database(request).loop_read() as session:
        company = ingest.event_company(session, event_id)
    companies = [] if company is None else [company]

    def work(session: Session) -> tuple[str, datetime]:
        return ingest.void(session, event_id, utcnow())

    event_id_out, voided_at = await write_transaction(request, companies, work)
    return success(VoidResult(id=event_id_out, voided_at=voided_at))
