"""Routes: GET /billing/usage, /billing/usage/series and /billing/usage.csv (SPEC 2, 6, 7)."""

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from tally.auth.tenancy import visible_companies
from tally.companies.repository import CompanyRef
from tally.core.envelope import AUTHENTICATED, Envelope, error_responses
from tally.core.http import CompanyIdQuery, EndQuery, OptionalQuery, StartQuery, parse_uuid
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.deps import DbSession, UsageReader, get_database
from tally.reporting import csv_export, service
from tally.reporting.schemas import UsageSeries
from tally.reporting.series import (
    COMPANY_SERIES,
    GRANULARITIES,
    MAX_LISTED,
    SELECTION_PATTERN,
    SeriesPlan,
    check_selection,
    company_selection,
    plan,
    series_json,
)
from tally.reporting.usage import usage_report
from tally.reporting.views import success_json
from tally.usage.api import resolve_window
from tally.usage.schemas import UsageReport

# Unknown and repeated query parameters are refused app-wide (tally.core.http.strict_query).
router = APIRouter(tags=["usage"], responses=error_responses(*AUTHENTICATED))
# Bytes gathered before each write: one thread hop and one send per chunk, not per row.
CHUNK_BYTES = 64 * 1024

TimeZone = Annotated[
    OptionalQuery,
    Query(alias="timeZone", description="IANA name (Europe/Berlin); default UTC"),
]


def _granularity(description: str) -> Any:
    return Query(description=description, json_schema_extra={"enum": list(GRANULARITIES)})


@router.get("/billing/usage", response_model=Envelope[UsageReport])
async def get_usage(
    request: Request,
    principal: UsageReader,
    start: StartQuery = None,
    end: EndQuery = None,
    company_id: CompanyIdQuery = None,
) -> Response:
    """Usage per company and cost key over [start, end)."""
    # The key, its rate limits and its companies were settled on the event
    # loop (tally.deps._authenticate); the query is checked there too. What
    # reads the usage, and the encoding of the answer, then run in one
    # worker thread: one hop per request.
    window = resolve_window(start, end, utcnow())
    requested = parse_uuid(company_id, "companyId") if company_id is not None else None
    # Not a dependency: a synchronous one would run in a worker thread of its own.
    database = get_database(request)

    def answer() -> bytes:
        with database.transaction(write=False) as session:
            companies = visible_companies(session, principal, requested)
            data = usage_report(session, companies, *window)
        return success_json(data)

    return Response(await to_thread.run_sync(answer), media_type="application/json")


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


@router.get("/billing/usage/series", response_model=Envelope[UsageSeries])
def get_series(
    principal: UsageReader,
    session: DbSession,
    database: Annotated[Database, Depends(get_database)],
    start: StartQuery = None,
    end: EndQuery = None,
    company_id: CompanyIdQuery = None,
    granularity: Annotated[OptionalQuery, _granularity("hour, day (default), week, month")] = None,
    time_zone: TimeZone = None,
    company_series: Annotated[
        OptionalQuery,
        Query(
            alias=COMPANY_SERIES,
            description=(
                "whose buckets `companies` lists: all (default), none, or 1 to "
                f"{MAX_LISTED} comma-separated company ids in the key's reach; "
                "the top-level buckets always cover every company"
            ),
            json_schema_extra={"pattern": SELECTION_PATTERN},
        ),
    ] = None,
) -> StreamingResponse:
    """Usage per bucket of the time zone's calendar over [start, end)."""
    day = "day" if granularity is None else granularity
    params = (start, end, company_id, day, time_zone)
    selected = company_selection(company_series)
    companies, request = _resolve(principal, session, params)
    check_selection(selected, companies)
    produce = partial(series_json, selected=selected)
    return StreamingResponse(
        _stream(database, produce, companies, request), media_type="application/json"
    )


@router.get(
    "/billing/usage.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "RFC 4180 CSV, one row per bucket, company and cost key",
        }
    },
)
def get_csv(
    principal: UsageReader,
    session: DbSession,
    database: Annotated[Database, Depends(get_database)],
    start: StartQuery = None,
    end: EndQuery = None,
    company_id: CompanyIdQuery = None,
    granularity: Annotated[
        OptionalQuery, _granularity("hour, day, week, month; none: one period")
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
