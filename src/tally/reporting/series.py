"""GET /billing/usage/series and the CSV: the buckets of a window, and their usage streamed.

A report is produced chunk by chunk (of companies for the JSON, of buckets
for the CSV), so memory stays flat in the number of rows.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import simplejson
from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.calendar import Bucket, CalendarError, Granularity, buckets, zone
from tally.core.instants import format_instant, utcnow
from tally.errors import ValidationFailed
from tally.reporting import service
from tally.reporting.results import CompanySeries
from tally.reporting.schemas import CompanySeries as CompanySeriesOut
from tally.reporting.schemas import Period, UsageBucket
from tally.reporting.views import Across, company_totals

GRANULARITIES = tuple(granularity.value for granularity in Granularity)


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


def dumps(value: Any) -> str:
    """JSON exactly as the envelope writes it (decimals exact, compact)."""
    return simplejson.dumps(
        value, use_decimal=True, default=str, ensure_ascii=False, separators=(",", ":")
    )


def _bucket(bucket: Bucket, fields: dict[str, Any]) -> UsageBucket:
    return UsageBucket(start=format_instant(bucket.start), end=format_instant(bucket.end), **fields)


def _company(item: CompanySeries, cut: Sequence[Bucket]) -> CompanySeriesOut:
    company = item.company
    return CompanySeriesOut(
        company_id=company.id,
        company_name=company.name,
        billing_system=company.billing_system,
        buckets=[
            _bucket(bucket, company_totals(company, usage))
            for bucket, usage in zip(cut, item.usage, strict=True)
        ],
    )


def series_json(
    session: Session, companies: Sequence[CompanyRef], request: SeriesPlan
) -> Iterator[str]:
    """The whole envelope of GET /billing/usage/series, one company at a time."""
    ordered = service.ordered(companies)
    across = [Across(ordered) for _ in request.buckets]
    period = Period(start=format_instant(request.start), end=format_instant(request.end))
    granularity = request.granularity or Granularity.DAY
    yield (
        '{"success":true,"data":{"period":'
        + dumps(period.dump())
        + ',"granularity":'
        + dumps(granularity.value)
        + ',"timeZone":'
        + dumps(request.time_zone)
        + ',"companies":['
    )
    for position, item in enumerate(service.series(session, ordered, request.instants)):
        for bucket_across, usage in zip(across, item.usage, strict=True):
            bucket_across.add(item.company, usage)
        yield ("," if position else "") + dumps(_company(item, request.buckets).dump())
    top = [
        _bucket(bucket, total.fields()).dump()
        for bucket, total in zip(request.buckets, across, strict=True)
    ]
    timestamp = format_instant(utcnow().replace(microsecond=0))
    yield '],"buckets":' + dumps(top) + '},"error":null,"timestamp":' + dumps(timestamp) + "}"
