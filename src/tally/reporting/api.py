"""Routes: GET /billing/usage/series and GET /billing/usage.csv (SPEC sections 6 and 7)."""

from collections.abc import Callable, Iterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from tally.auth.tenancy import visible_companies
from tally.companies.repository import CompanyRef
from tally.core.envelope import EnvelopeResponse
from tally.core.http import parse_uuid
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.deps import DbSession, UsageReader, get_database
from tally.errors import ValidationFailed
from tally.reporting import csv_export, service
from tally.reporting.schemas import UsageSeries
from tally.reporting.series import SeriesPlan, plan, series_json
from tally.usage.api import resolve_window

router = APIRouter(tags=["usage"])
PARAMETERS = frozenset({"start", "end", "companyId", "granularity", "timeZone"})
# Bytes gathered before each write: one thread hop and one send per chunk, not per row.
CHUNK_BYTES = 64 * 1024

Start = Annotated[str | None, Query(description="inclusive; ISO 8601")]
End = Annotated[str | None, Query(description="exclusive; ISO 8601")]
CompanyId = Annotated[str | None, Query(alias="companyId")]
TimeZone = Annotated[str | None, Query(alias="timeZone", description="IANA name; default UTC")]


def strict_query(request: Request) -> None:
    """Unknown or repeated query parameters are a 400, not silently ignored."""
    for name in request.query_params:
        if name not in PARAMETERS:
            raise ValidationFailed.field(name, "unknown query parameter")
        if len(request.query_params.getlist(name)) > 1:
            raise ValidationFailed.field(name, "given more than once")


StrictQuery = Annotated[None, Depends(strict_query)]


def _resolve(
    principal: UsageReader,
    session: DbSession,
    params: tuple[str | None, str | None, str | None, str | None, str | None],
) -> tuple[list[CompanyRef], SeriesPlan]:
    start, end, company_id, granularity, time_zone = params
    window = resolve_window(start, end, utcnow())
    request = plan(*window, granularity, time_zone)
    requested = parse_uuid(company_id, "companyId") if company_id is not None else None
    return visible_companies(session, principal, requested), request


def _stream(
    database: Database,
    produce: Callable[..., Iterator[str]],
    companies: Sequence[CompanyRef],
    request: SeriesPlan,
) -> Iterator[bytes]:
    """Run `produce` in a read transaction of its own (the request's has ended), in chunks."""
    with database.transaction(write=False) as session:
        service.snapshot(session)
        pending: list[str] = []
        size = 0
        for text in produce(session, companies, request):
            pending.append(text)
            size += len(text)
            if size >= CHUNK_BYTES:
                yield "".join(pending).encode("utf-8")
                pending, size = [], 0
        yield "".join(pending).encode("utf-8")


@router.get(
    "/billing/usage/series",
    response_class=EnvelopeResponse,
    responses={200: {"model": UsageSeries, "description": "the series in the envelope's data"}},
)
def get_series(
    principal: UsageReader,
    _strict: StrictQuery,
    session: DbSession,
    database: Annotated[Database, Depends(get_database)],
    start: Start = None,
    end: End = None,
    company_id: CompanyId = None,
    granularity: Annotated[
        str | None, Query(description="hour, day (default), week, month")
    ] = None,
    time_zone: TimeZone = None,
) -> StreamingResponse:
    """Usage per bucket of the time zone's calendar over [start, end)."""
    day = "day" if granularity is None else granularity
    params = (start, end, company_id, day, time_zone)
    companies, request = _resolve(principal, session, params)
    return StreamingResponse(
        _stream(database, series_json, companies, request), media_type="application/json"
    )


@router.get(
    "/billing/usage.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "RFC 4180 CSV"}},
)
def get_csv(
    principal: UsageReader,
    _strict: StrictQuery,
    session: DbSession,
    database: Annotated[Database, Depends(get_database)],
    start: Start = None,
    end: End = None,
    company_id: CompanyId = None,
    granularity: Annotated[
        str | None, Query(description="none: one row set for the window")
    ] = None,
    time_zone: TimeZone = None,
) -> StreamingResponse:
    """Usage as CSV: one row per bucket, company and cost key with counted events."""
    params = (start, end, company_id, granularity, time_zone)
    companies, request = _resolve(principal, session, params)
    disposition = f'attachment; filename="{csv_export.filename(request)}"'
    return StreamingResponse(
        _stream(database, csv_export.csv_lines, companies, request),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition},
    )
