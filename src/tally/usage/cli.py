"""`tally verify` and `tally events import` (wired into tally.cli)."""

from typing import Annotated

import typer

events_app = typer.Typer(help="Usage events.", no_args_is_help=True)


def verify(
    repair: Annotated[bool, typer.Option(help="rewrite every aggregate that differs")] = False,
) -> None:
    """Recompute every aggregate from the raw events; exit 1 on any mismatch."""
    raise NotImplementedError("tally verify is being built")
