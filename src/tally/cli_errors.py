"""How the `tally` command fails: one line on stderr and a documented exit status.

- 0: done.
- 1: ran, and found problems (verify: mismatches; import: rejected lines;
  demo: the database already has data).
- 2: could not run: a bad option or value, an unreadable file, a database it
  cannot open or migrate, an address it cannot listen on.
- 3: an internal error (a bug): the line names the exception type;
  TALLY_DEBUG=1 shows the traceback instead.
- 130: interrupted (Ctrl-C).

A message never holds SQL, statement parameters or keys: database errors are
reduced to the first line of the driver's message, and URLs lose their password.
"""

import functools
import os
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from tally.errors import TallyError

OK = 0
PROBLEMS = 1
CANNOT_RUN = 2
INTERNAL = 3
INTERRUPTED = 130

URL_HELP = (
    "give --database-url or TALLY_DATABASE_URL as sqlite:///FILE or postgresql://USER@HOST:PORT/DB"
)


P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """A failure the command explains itself, in one line."""

    def __init__(self, message: str, status: int = CANNOT_RUN) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def redact(url: str) -> str:
    """The URL to show people: without its password (nor any password parameter)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(an unparsable URL)"
    query = {name: value for name, value in parsed.query.items() if "password" not in name.lower()}
    return parsed.set(query=query).render_as_string(hide_password=True)


def first_line(text: str) -> str:
    """The first non-empty line: drivers append context (and statements) below it."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def database_error(exc: Exception, url: str | None) -> str:
    """What went wrong opening or using a database, without SQL or parameters."""
    where = f"the database {redact(url)}" if url else "the database"
    if isinstance(exc, ArgumentError | ImportError):  # ImportError: a dialect without its driver
        return f"cannot use {where}: not a database URL tally knows; {URL_HELP}"
    if isinstance(exc, DBAPIError):
        reason = first_line(str(exc.orig)) or type(exc.orig).__name__
        return f"cannot use {where}: {reason}; check the URL and that the database is reachable"
    if isinstance(exc, CommandError):
        return (
            f"cannot migrate {where}: {first_line(str(exc))} "
            "(is it a tally database, from this version of tally?)"
        )
    return f"cannot use {where}: {type(exc).__name__}"


def validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error, as `field: message`."""
    problems: Iterable[Any] = exc.errors(include_url=False, include_input=False)
    first = next(iter(problems), None)
    if first is None:
        return "invalid value"
    field = ".".join(str(part) for part in first["loc"])
    if exc.title == "Settings":
        field = f"TALLY_{field.upper()}"
    more = exc.error_count() - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{field}: {first['msg']}{suffix}"


def usage_error(exc: typer.TyperException) -> str:
    """Click's message in one line, with where to find help."""
    message = " ".join(exc.format_message().split())
    context = getattr(exc, "ctx", None)
    if context is not None:
        return f"{message} (see '{context.command_path} --help')"
    return message


def describe(exc: BaseException) -> tuple[str, int]:
    """(one line, exit status) for anything a command can raise."""
    if isinstance(exc, CliError):
        return exc.message, exc.status
    if isinstance(exc, typer.TyperException):  # Click's usage errors (Typer vendors Click)
        return usage_error(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt | typer.Abort):
        return "interrupted", INTERRUPTED
    if isinstance(exc, TallyError):
        return f"{exc.code}: {first_line(exc.message)}", CANNOT_RUN
    if isinstance(exc, ValidationError):
        return validation_error(exc), CANNOT_RUN
    if isinstance(exc, ArgumentError | DBAPIError | CommandError):
        return database_error(exc, None), CANNOT_RUN
    if isinstance(exc, OSError):
        target = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{target}", CANNOT_RUN
    return (
        f"internal error ({type(exc).__name__}); this is a bug in tally: "
        "run again with TALLY_DEBUG=1 to see the traceback and report it",
        INTERNAL,
    )


def debugging() -> bool:
    """TALLY_DEBUG=1: let exceptions through, with their traceback (for developers)."""
    return os.environ.get("TALLY_DEBUG") == "1"


def fail(exc: BaseException) -> NoReturn:
    """Print the one line for exc and exit with its status."""
    message, status = describe(exc)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status) from exc


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so that whatever it raises ends as one line and an exit status."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if debugging():
                raise
            fail(exc)

    return run
