"""`tally report`: usage, a series or the CSV, straight from the database, for finance.

Exit codes: 0 written; 2 bad option (the same checks and messages as the API).
The output file appears only once complete (written beside it, then renamed).
"""

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.orm import Session

from tally.cli_options import DatabaseOption
from tally.cli_options import database_url as database_url_of
from tally.companies import repository
from tally.companies.repository import CompanyRef
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.db.migrate import upgrade
from tally.errors import CompanyNotAccessible, TallyError, ValidationFailed
from tally.reporting import csv_export, service
from tally.reporting.series import SeriesPlan, plan, series_json
from tally.reporting.usage import usage_report
from tally.usage.api import resolve_window

err = Console(stderr=True)
# Units of work (companies or buckets) from which a progress bar is worth showing.
PROGRESS_FROM = 50


class OutputFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


def _companies(session: Session, company: str | None) -> list[CompanyRef]:
    if company is None:
        return repository.all_company_refs(session)
    try:
        company_id = uuid.UUID(company)
    except ValueError as exc:
        raise ValidationFailed.field("--company", "must be a UUID") from exc
    found = repository.company_ref(session, company_id)
    if found is None:
        raise CompanyNotAccessible(f"no company {company_id}")
    return [found]


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    """stdout, or a file that appears only when complete."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int], None] | None]:
    if total < PROGRESS_FROM or not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.advance(task, done)


def _lines(
    session: Session,
    companies: list[CompanyRef],
    request: SeriesPlan,
    output_format: OutputFormat,
    advance: Callable[[int], None] | None,
) -> Iterator[str]:
    if output_format is OutputFormat.CSV:
        yield from csv_export.csv_lines(session, companies, request, advance)
    elif request.granularity is None:
        yield usage_report(session, companies, request.start, request.end)
    else:
        yield from series_json(session, companies, request, advance, envelope=False)
    if output_format is OutputFormat.JSON:
        yield "\n"


def report(
    start: Annotated[str, typer.Option(help="inclusive; ISO 8601 (a date is midnight UTC)")],
    end: Annotated[str, typer.Option(help="exclusive; ISO 8601")],
    granularity: Annotated[
        str | None, typer.Option(help="hour, day, week or month; none: one period")
    ] = None,
    time_zone: Annotated[str, typer.Option(help="IANA zone of the buckets' calendar")] = "UTC",
    company: Annotated[str | None, typer.Option(help="one company's id; default all")] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="csv (as GET /billing/usage.csv) or json")
    ] = OutputFormat.CSV,
    output: Annotated[Path | None, typer.Option(help="file to write; default stdout")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Usage over [start, end), per bucket, company and cost key, from the database."""
    url = database_url_of(database_url)
    upgrade(url)
    database = Database(url)
    try:
        window = resolve_window(start, end, utcnow())
        request = plan(*window, granularity, time_zone)
        with database.transaction(write=False) as session:
            service.snapshot(session)
            companies = _companies(session, company)
            csv = output_format is OutputFormat.CSV
            total, what = (
                (len(request.buckets), "buckets") if csv else (len(companies), "companies")
            )
            with _progress(total, what) as advance, _output(output) as handle:
                for text in _lines(session, companies, request, output_format, advance):
                    handle.write(text)
    except TallyError as exc:
        err.print(f"[red]error[/red] {exc.code}: {escape(exc.message)}")
        raise typer.Exit(2) from None
    finally:
        database.dispose()
