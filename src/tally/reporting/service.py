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
from tally.usage.buckets import DAY, HOUR, MONTH, floor_hour, prefix_lookups

# Companies x instants held in memory at once; a report is computed chunk by chunk.
CELL_BUDGET = 5_000

# events, minutes, credits, interviews
Counters = tuple[int, ...]


def snapshot(session: Session) -> None:
    """Make a report's several statements read one snapshot (call before the first).

    SQLite's read transactions are snapshots already; PostgreSQL's default
    READ COMMITTED gives each statement its own, so a concurrent batch could
    land between two chunks of one report and its buckets would not add up.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def ordered(companies: Sequence[CompanyRef]) -> list[CompanyRef]:
    """SPEC section 2 order: by name (code points), then id."""
    return sorted(companies, key=lambda company: (company.name, str(company.id)))


def company_chunk(instant_count: int, cell_budget: int = CELL_BUDGET) -> int:
    return max(1, cell_budget // max(1, instant_count))


ZERO = (0, 0, 0, 0)


def _add(into: list[Counters], index: int, values: Sequence[int]) -> None:
    into[index] = tuple(a + b for a, b in zip(into[index], values, strict=True))


def _level_ranges(hours: Sequence[int]) -> dict[int, dict[tuple[int, int], list[int]]]:
    """Per level, each distinct non-empty range to seek in, and the hours needing it."""
    needed: dict[int, dict[tuple[int, int], list[int]]] = {MONTH: {}, DAY: {}, HOUR: {}}
    for index, hour in enumerate(hours):
        for level, low, high in prefix_lookups(hour):
            if low < high:
                needed[level].setdefault((low, high), []).append(index)
    return needed


def _totals(
    session: Session, company_ids: Sequence[uuid.UUID], micros: Sequence[int]
) -> dict[tuple[uuid.UUID, str | None], list[Counters]]:
    """(company, cost key) -> counters of everything before each instant, in order."""
    hours = sorted({floor_hour(instant) for instant in micros})
    at_hour: dict[tuple[uuid.UUID, str | None], list[Counters]] = {}
    for level, ranges in _level_ranges(hours).items():
        if not ranges:
            continue
        users = list(ranges.values())
        numbered = [(index, low, high) for index, (low, high) in enumerate(ranges)]
        for index, company_id, key, *values in repository.latest_rows(
            session, company_ids, level, numbered
        ):
            row = at_hour.get((company_id, key))
            if row is None:
                row = at_hour[(company_id, key)] = [ZERO] * len(hours)
            for hour_index in users[index]:
                _add(row, hour_index, values)
    position = {hour: index for index, hour in enumerate(hours)}
    hour_of = [position[floor_hour(instant)] for instant in micros]
    totals = {pair: [row[hour] for hour in hour_of] for pair, row in at_hour.items()}
    partial_hours = [
        (index, floor_hour(instant), instant)
        for index, instant in enumerate(micros)
        if instant != floor_hour(instant)
    ]
    if partial_hours:
        raw = repository.raw_sums(session, company_ids, partial_hours)
        for index, company_id, key, *values in raw:
            pair = (company_id, key)
            if pair not in totals:
                totals[pair] = [ZERO] * len(micros)
            _add(totals[pair], index, values)
    return totals


def _chunk_series(
    session: Session, companies: Sequence[CompanyRef], micros: Sequence[int]
) -> list[CompanySeries]:
    count = len(micros) - 1
    result = {
        company.id: CompanySeries(company, [Usage() for _ in range(count)]) for company in companies
    }
    totals = _totals(session, [company.id for company in companies], micros)
    for (company_id, key), cumulative in totals.items():
        usage = result[company_id].usage
        for index in range(count):
            low, high = cumulative[index], cumulative[index + 1]
            if low == high:
                continue
            events = high[0] - low[0]
            usage[index].interviews += high[3] - low[3]
            if key is not None and events:
                usage[index].by_cost_key[key] = Sums(events, high[1] - low[1], high[2] - low[2])
    return [result[company.id] for company in companies]


def series(
    session: Session,
    companies: Sequence[CompanyRef],
    instants: Sequence[datetime],
    cell_budget: int = CELL_BUDGET,
) -> Iterator[CompanySeries]:
    """Each company's usage in [t0, t1), ..., [tN-1, tN), in the order given.

    Computed a chunk of companies at a time, so memory is bounded whatever the
    number of companies.
    """
    micros = [to_micros(instant) for instant in instants]
    if any(low >= high for low, high in pairwise(micros)):
        raise ValueError("instants must be strictly increasing")
    step = company_chunk(len(micros), cell_budget)
    for offset in range(0, len(companies), step):
        yield from _chunk_series(session, companies[offset : offset + step], micros)
