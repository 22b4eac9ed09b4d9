"""Options shared by every `tally` command that touches the database."""

from typing import Annotated

import typer
from alembic.util import CommandError
from sqlalchemy.exc import ArgumentError, DBAPIError

from tally.cli_errors import CliError, database_error, redact
from tally.db.migrate import upgrade
from tally.settings import get_settings

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="TALLY_DATABASE_URL",
        help="SQLAlchemy URL; default sqlite:///tally.db, postgresql://... for PostgreSQL.",
    ),
]


def database_url(given: str | None) -> str:
    """The URL given on the command line or in the environment, else the default."""
    return given or get_settings().database_url


def migrated_database(given: str | None) -> str:
    """Resolve the URL, bring the database to the latest schema, and say which it is.

    A database that cannot be opened (bad URL, missing directory, server down,
    wrong password, not a tally database) is one CliError naming it, with the
    password hidden. The "database: ..." line goes to stderr, so that stdout
    stays what the command prints (a key, a report).
    """
    url = database_url(given)
    try:
        upgrade(url)
    except (ArgumentError, DBAPIError, CommandError, ImportError) as exc:
        raise CliError(database_error(exc, url)) from exc
    typer.echo(f"database: {redact(url)}", err=True)
    return url
