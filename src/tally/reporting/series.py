"""GET /billing/usage/series and the CSV: the buckets of a window, and their usage streamed.

A report is produced chunk by chunk (of companies for the JSON, of buckets
for the CSV), so memory stays flat in the number of rows.
"""

import re
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.calendar import Bucket, CalendarError, Granularity, buckets, zone
from tally.errors import CompanyNotAccessible, ValidationFailed
from tally.reporting import service
from tally.reporting.results import CompanySeries
from tally.reporting.views import (
    Across,
    company_head,
    company_totals,
    edges,
    envelope_head,
    envelope_tail,
    string,
)

# Told how many more units of work are done (companies, or buckets for the CSV).
Progress = Callable[[int], None]
GRANULARITIES = tuple(granularity.value for granularity in Granularity)
# `companySeries`: whose buckets the series lists (an extension of SPEC section 6).
COMPANY_SERIES = "companySeries"
MAX_LISTED = 100
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
SELECTION_PATTERN = f"^(all|none|{_UUID}(,{_UUID}){{0,{MAX_LISTED - 1}}})$"


@dataclass(frozen=True)
class SeriesPlan:
    """A validated request: the window, how it is cut, and the buckets."""

    start: datetime
    end: datetime
    granularity: Granularity | None  # None: one bucket, the whole window (CSV only)
    time_zone: str
    buckets: list[Bucket]

    @property
    def instants(self) -> list[datetime]:
        return [self.buckets[0].start] + [bucket.end for bucket in self.buckets]


def plan(
    start: datetime, end: datetime, granularity: str | None, time_zone: str | None
) -> SeriesPlan:
    """Cut [start, end) into buckets; 400 naming `granularity` or `timeZone` when it cannot."""
    if granularity is not None and granularity not in GRANULARITIES:
        raise ValidationFailed.field("granularity", f"must be one of {', '.join(GRANULARITIES)}")
    name = "UTC" if time_zone is None else time_zone
    try:
        tz = zone(name)
        if granularity is None:
            cut = [Bucket(start, end)]
        else:
            cut = buckets(start, end, Granularity(granularity), tz)
    except CalendarError as exc:
        raise ValidationFailed.field(exc.field, exc.message) from exc
    chosen = Granularity(granularity) if granularity is not None else None
    return SeriesPlan(start, end, chosen, name, cut)


_SELECTION = re.compile(SELECTION_PATTERN)


def company_selection(value: str | None) -> frozenset[uuid.UUID] | None:
    """The companies whose buckets a series lists: None for every one (the default).

    `all` (or no value) lists every company, `none` none, and a comma-separated
    list of 1 to MAX_LISTED company ids exactly those. The top-level `buckets`
    always cover every company in scope.
    """
    if value is None or value == "all":
        return None
    if value == "none":
        return frozenset()
    if _SELECTION.fullmatch(value) is None:
        raise ValidationFailed.field(
            COMPANY_SERIES,
            f"must be all, none, or 1 to {MAX_LISTED} comma-separated company ids (UUIDs)",
        )
    ids = [uuid.UUID(part) for part in value.split(",")]
    chosen = frozenset(ids)
    if len(chosen) != len(ids):
        raise ValidationFailed.field(COMPANY_SERIES, "names a company more than once")
    return chosen


def check_selection(
    selected: frozenset[uuid.UUID] | None, companies: Collection[CompanyRef]
) -> None:
    """403 COMPANY_NOT_ACCESSIBLE when `companySeries` names a company outside the answer."""
    if selected and not selected <= {company.id for company in companies}:
        raise CompanyNotAccessible(
            f"{COMPANY_SERIES}: a company is not accessible with this key",
            details={"field": COMPANY_SERIES},
        )


def _buckets(item: CompanySeries, bucket_edges: Sequence[str]) -> str:
    """A company's `buckets` array."""
    company = item.company
    return (
        "["
        + ",".join(
            f"{{{edge},{company_totals(company, usage)}}}"
            for edge, usage in zip(bucket_edges, item.usage, strict=True)
        )
        + "]"
    )


def _company(item: CompanySeries, buckets: str) -> str:
    """One company of the series, as tally.reporting.schemas.CompanySeries dumps it."""
    return f'{{{company_head(item.company)},"buckets":{buckets}}}'


def _top(bucket_edges: Sequence[str], across: Sequence[Across]) -> str:
    """The end of `companies` and the top-level buckets."""
    top = ",".join(
        f"{{{edge},{total.fields()}}}" for edge, total in zip(bucket_edges, across, strict=True)
    )
    return f'],"buckets":[{top}]}}'


def series_json(
    session: Session,
    companies: Sequence[CompanyRef],
    request: SeriesPlan,
    progress: Progress | None = None,
    envelope: bool = True,
    selected: frozenset[uuid.UUID] | None = None,
) -> Iterator[str]:
    """The whole envelope of GET /billing/usage/series, one company at a time.

    `progress` is told each company done (len(companies) in all); without
    `envelope`, only its `data`; with `selected` (company_selection), only
    those companies' entries (the top-level buckets still sum every company).
    """
    ordered = service.ordered(companies)
    granularity = request.granularity or Granularity.DAY
    yield (
        (envelope_head() if envelope else "")
        + f'{{"period":{{{edges(request.start, request.end)}}},'
        + f'"granularity":{string(granularity.value)},"timeZone":{string(request.time_zone)},'
        + '"companies":['
    )
    bucket_edges = [edges(bucket.start, bucket.end) for bucket in request.buckets]
    if len(ordered) == 1:
        # One company (every company key): the sums across companies are its
        # own, field for field, so its buckets' text is written once, for both.
        item = next(iter(service.series(session, ordered, request.instants)))
        buckets = _buckets(item, bucket_edges)
        if selected is None or item.company.id in selected:
            yield _company(item, buckets)
        if progress is not None:
            progress(1)
        yield f'],"buckets":{buckets}}}'
    elif selected is not None and 2 * len(selected) < len(ordered):
        # Few companies listed, or none (a platform's chart): the top-level
        # buckets are summed over the companies as their totals are read
        # (service.scope_series), and only the listed companies' own buckets
        # are computed. (Listing half or more, computing every company's
        # buckets once gives both.)
        listed = [company for company in ordered if company.id in selected]
        for count, item in enumerate(service.series(session, listed, request.instants)):
            yield ("," if count else "") + _company(item, _buckets(item, bucket_edges))
        across = [Across(ordered) for _ in request.buckets]
        for bucket_across, by_unit in zip(
            across, service.scope_series(session, ordered, request.instants), strict=True
        ):
            for unit, usage in by_unit.items():
                bucket_across.add_in(unit, usage)
        if progress is not None:
            progress(len(ordered))
        yield _top(bucket_edges, across)
    else:
        across = [Across(ordered) for _ in request.buckets]
        count = 0
        for item in service.series(session, ordered, request.instants):
            for bucket_across, usage in zip(across, item.usage, strict=True):
                bucket_across.add(item.company, usage)
            if selected is None or item.company.id in selected:
                yield ("," if count else "") + _company(item, _buckets(item, bucket_edges))
                count += 1
            if progress is not None:
                progress(1)
        yield _top(bucket_edges, across)
    if envelope:
        yield envelope_tail()
