"""Options shared by every `tally` command that touches the database."""

from typing import Annotated

import typer

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
