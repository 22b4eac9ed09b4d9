"""`tally verify` and `tally events import` (wired into tally.cli).

Exit codes: 0 all good; 1 verify found a mismatch (even once repaired) or
an import rejected a line (or stopped on one with --strict); 2 the command
could not run (bad option, unreadable file, bad CSV header, a database it
cannot open); see tally.cli_errors for the whole table.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from tally.cli_errors import CliError, one_line_errors
from tally.cli_options import DatabaseOption, migrated_database
from tally.db.engine import Database
from tally.usage import verify as checks
from tally.usage.checkpoint import default_path
from tally.usage.importer import (
    DEFAULT_CHUNK,
    MAX_CHUNK,
    ImportFailed,
    ImportSummary,
    import_events,
)

events_app = typer.Typer(help="Usage events.", no_args_is_help=True)

SHOWN = 100


class FileFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


def _database(database_url: str | None) -> Database:
    return Database(migrated_database(database_url))


def _mismatch_table(mismatches: list[checks.Mismatch]) -> Table:
    table = Table("table", "row", "stored", "expected", title="Aggregates that differ")
    for mismatch in mismatches[:SHOWN]:
        cells = (mismatch.table, mismatch.key, mismatch.stored, mismatch.expected)
        table.add_row(*(escape(cell) for cell in cells))
    return table


def verify(
    repair: Annotated[bool, typer.Option(help="rewrite every aggregate that differs")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Recompute every aggregate from the raw events; exit 1 on any mismatch."""
    out = Console()
    database = _database(database_url)
    try:
        mismatches = checks.run(database, fix=repair)
    finally:
        database.dispose()
    if not mismatches:
        out.print("verify: every aggregate matches the raw events")
        return
    out.print(_mismatch_table(mismatches))
    if len(mismatches) > SHOWN:
        out.print(f"... and {len(mismatches) - SHOWN} more")
    done = f"; repaired {len(mismatches)}" if repair else "; run with --repair to fix"
    out.print(f"verify: {len(mismatches)} mismatch(es){done}")
    raise typer.Exit(1)


@contextmanager
def _progress(console: Console, path: Path) -> Iterator[Callable[[int], None]]:
    """A bar by bytes read, shown only on a terminal."""
    columns = (
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("import", total=path.stat().st_size)
        yield lambda done: progress.update(task, completed=done)


def _print_summary(out: Console, summary: ImportSummary) -> None:
    if summary.resumed_at is not None:
        out.print(f"resumed at line {summary.resumed_at} from the checkpoint", soft_wrap=True)
    for rejection in summary.rejections:
        out.print(f"line {rejection.line}: {escape(rejection.reason)}", soft_wrap=True)
    hidden = summary.rejected - len(summary.rejections)
    if hidden:
        out.print(f"... and {hidden} more rejected line(s)")
    if summary.stopped:
        first = summary.rejections[0]
        out.print(
            f"stopped at line {first.line} (--strict): nothing of its chunk was stored; "
            "the chunks before it were committed",
            soft_wrap=True,
        )
    out.print(
        f"accepted {summary.accepted}, duplicates {summary.duplicates}, "
        f"rejected {summary.rejected}",
        soft_wrap=True,
    )


@events_app.command("import")
@one_line_errors
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="default: from the extension")
    ] = None,
    strict: Annotated[bool, typer.Option(help="stop at the first bad line")] = False,
    chunk_size: Annotated[
        int, typer.Option(min=1, max=MAX_CHUNK, help="events per transaction")
    ] = DEFAULT_CHUNK,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="where progress is saved after each chunk (default: FILE.tally-import)",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--restart",
            help="continue an interrupted import from its checkpoint, or start from line 1",
        ),
    ] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Import events from an NDJSON or CSV file, as POST /usage/events would.

    A rerun after a crash resumes where the last committed chunk ended.
    """
    err = Console(stderr=True)
    database = _database(database_url)
    saved = checkpoint or default_path(file)
    try:
        with _progress(err, file) as advance:
            fmt = file_format.value if file_format else None
            summary = import_events(database, file, fmt, strict, chunk_size, advance, saved, resume)
    except ImportFailed as exc:
        raise CliError(str(exc)) from exc
    finally:
        database.dispose()
    if summary.checkpoint_error is not None:
        err.print(
            f"warning: {escape(summary.checkpoint_error)}; this import could not have resumed "
            "after a crash (give --checkpoint PATH in a writable folder)",
            soft_wrap=True,
        )
    _print_summary(Console(), summary)
    if summary.rejected:
        raise typer.Exit(1)
