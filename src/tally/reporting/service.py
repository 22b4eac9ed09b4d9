"""Usage of companies between consecutive instants t0 < t1 < ... < tN, from the running totals.

The total of counted events before any instant t is the running total at t's
UTC hour (three seeks, tally.usage.buckets) plus the raw events in
[floor_hour(t), t) when t is not a whole hour. A bucket [ti, ti+1) is the
difference of two such totals. All arithmetic is on integers (millionths),
so buckets add up to the window, to the last digit, by construction.
"""

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import pairwise

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.instants import to_micros
from tally.reporting import repository
from tally.reporting.results import CompanySeries, Sums, Usage
from tally.usage.buckets import floor_hour

# Companies x instants held in memory at once; a report is computed chunk by chunk.
CELL_BUDGET = 20_000

# events, minutes, credits, interviews
Counters = list[int]


def ordered(companies: Sequence[CompanyRef]) -> list[CompanyRef]:
    """SPEC section 2 order: by name (code points), then id."""
    return sorted(companies, key=lambda company: (company.name, str(company.id)))


def company_chunk(instant_count: int) -> int:
    return max(1, CELL_BUDGET // max(1, instant_count))


def _add(into: dict[int, Counters], index: int, values: Sequence[int]) -> None:
    counters = into.setdefault(index, [0, 0, 0, 0])
    for position, value in enumerate(values):
        counters[position] += value


def _totals(
    session: Session, company_ids: Sequence[uuid.UUID], micros: Sequence[int]
) -> dict[tuple[uuid.UUID, str | None], dict[int, Counters]]:
    """(company, cost key) -> instant index -> counters of everything before that instant."""
    hours = sorted({floor_hour(instant) for instant in micros})
    hour_index = {hour: position for position, hour in enumerate(hours)}
    at_hour: dict[tuple[uuid.UUID, str | None], dict[int, Counters]] = {}
    for index, company_id, key, *values in repository.running_totals(
        session, company_ids, list(enumerate(hours))
    ):
        _add(at_hour.setdefault((company_id, key), {}), index, values)
    totals: dict[tuple[uuid.UUID, str | None], dict[int, Counters]] = {}
    for pair, by_hour in at_hour.items():
        totals[pair] = {
            index: list(by_hour.get(hour_index[floor_hour(instant)], (0, 0, 0, 0)))
            for index, instant in enumerate(micros)
        }
    ranges = [
        (index, floor_hour(instant), instant)
        for index, instant in enumerate(micros)
        if instant != floor_hour(instant)
    ]
    if ranges:
        for index, company_id, key, *values in repository.raw_sums(session, company_ids, ranges):
            _add(totals.setdefault((company_id, key), {}), index, values)
    return totals


def _buckets(by_instant: dict[int, Counters], count: int) -> Iterator[tuple[int, Counters]]:
    """(bucket index, counters) of each bucket whose counters are not all zero."""
    zero = [0, 0, 0, 0]
    for index in range(count):
        low, high = by_instant.get(index, zero), by_instant.get(index + 1, zero)
        difference = [b - a for a, b in zip(low, high, strict=True)]
        if any(difference):
            yield index, difference


def _chunk_series(
    session: Session, companies: Sequence[CompanyRef], micros: Sequence[int]
) -> list[CompanySeries]:
    count = len(micros) - 1
    result = {
        company.id: CompanySeries(company, [Usage() for _ in range(count)]) for company in companies
    }
    totals = _totals(session, [company.id for company in companies], micros)
    for (company_id, key), by_instant in totals.items():
        usage = result[company_id].usage
        for index, (events, minutes, credits, interviews) in _buckets(by_instant, count):
            usage[index].interviews += interviews
            if key is not None and events:
                usage[index].by_cost_key.setdefault(key, Sums()).add(events, minutes, credits)
    return [result[company.id] for company in companies]


def series(
    session: Session, companies: Sequence[CompanyRef], instants: Sequence[datetime]
) -> Iterator[CompanySeries]:
    """Each company's usage in [t0, t1), ..., [tN-1, tN), in the order given.

    Computed a chunk of companies at a time, so memory is bounded whatever the
    number of companies.
    """
    micros = [to_micros(instant) for instant in instants]
    if any(low >= high for low, high in pairwise(micros)):
        raise ValueError("instants must be strictly increasing")
    step = company_chunk(len(micros))
    for offset in range(0, len(companies), step):
        yield from _chunk_series(session, companies[offset : offset + step], micros)
