"""GET /billing/usage.csv and `tally report --format csv`: RFC 4180 rows, streamed.

One row per bucket, company and cost key with at least one counted event,
ordered by bucket, then company (SPEC section 2 order), then cost key.
Buckets are computed a chunk at a time (bounded by companies x buckets), so
memory stays flat however many rows the report has.
"""

import csv
import io
from collections.abc import Iterator, Sequence

from sqlalchemy.orm import Session

from tally.companies.repository import CompanyRef
from tally.core.instants import format_instant
from tally.core.quantities import from_scaled
from tally.reporting import service
from tally.reporting.schemas import CSV_COLUMNS
from tally.reporting.series import Progress, SeriesPlan

# A cell a spreadsheet would run as a formula gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape(cell: str) -> str:
    """Defuse spreadsheet formula injection (OWASP "CSV injection")."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def filename(request: SeriesPlan) -> str:
    """usage-<start>-<end>.csv, instants in ISO 8601 basic format (no colons for file systems)."""

    def compact(text: str) -> str:
        return text.replace("-", "").replace(":", "")

    start, end = format_instant(request.start), format_instant(request.end)
    return f"usage-{compact(start)}-{compact(end)}.csv"


def _line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([escape(cell) for cell in cells])
    return buffer.getvalue()


def rows(
    session: Session,
    companies: Sequence[CompanyRef],
    request: SeriesPlan,
    progress: Progress | None = None,
    cell_budget: int = service.CELL_BUDGET,
) -> Iterator[list[str]]:
    """The data rows (unescaped cells), in order; `progress` is told each bucket done."""
    ordered = service.ordered(companies)
    cut = request.buckets
    step = max(1, cell_budget // max(1, len(ordered)))
    for low in range(0, len(cut), step):
        chunk = cut[low : low + step]
        instants = [chunk[0].start] + [bucket.end for bucket in chunk]
        per_company = list(service.series(session, ordered, instants, cell_budget))
        for index, bucket in enumerate(chunk):
            start, end = format_instant(bucket.start), format_instant(bucket.end)
            for item in per_company:
                company = item.company
                for key, sums in item.usage[index].counted():
                    amount = str(from_scaled(sums.amount(company.billing_system)))
                    minutes = amount if company.billing_system == "minutes" else ""
                    credits = amount if company.billing_system == "credits" else ""
                    yield [
                        start,
                        end,
                        str(company.id),
                        company.name,
                        company.billing_system,
                        key,
                        str(sums.events),
                        minutes,
                        credits,
                    ]
            if progress is not None:
                progress(1)


def csv_lines(
    session: Session,
    companies: Sequence[CompanyRef],
    request: SeriesPlan,
    progress: Progress | None = None,
    cell_budget: int = service.CELL_BUDGET,
) -> Iterator[str]:
    """The header, then one line per row, each ending in CRLF.

    At most `cell_budget` companies x buckets are held at once.
    """
    yield _line(CSV_COLUMNS)
    for row in rows(session, companies, request, progress, cell_budget):
        yield _line(row)
