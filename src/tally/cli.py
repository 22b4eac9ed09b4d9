"""The `tally` command: thin wrappers over the services."""

import os
import sys
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console

from tally.auth import admin as keys_admin
from tally.auth.schemas import KeyIn
from tally.auth.scopes import KeyKind, Scope
from tally.cli_options import DatabaseOption
from tally.cli_options import database_url as database_url_of
from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.db.migrate import upgrade
from tally.errors import TallyError
from tally.reporting import cli as reporting_cli
from tally.settings import get_settings
from tally.usage import cli as usage_cli
from tally.webhooks import cli as webhooks_cli

# Never print local variables in tracebacks: they can hold keys and SQL.
app = typer.Typer(
    help="tally: usage metering and usage reporting.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(keys_app, name="keys")
app.add_typer(usage_cli.events_app, name="events")
app.command("verify")(usage_cli.verify)
app.command("worker")(webhooks_cli.worker)
app.command("report")(reporting_cli.report)
err = Console(stderr=True)


def _fail(exc: TallyError) -> None:
    err.print(f"[red]error[/red] {exc.code}: {exc.message}")
    raise typer.Exit(2)


@app.command()
def migrate(database_url: DatabaseOption = None) -> None:
    """Bring the database to the latest schema."""
    upgrade(database_url_of(database_url))
    err.print("database is at the latest schema")


@keys_app.command("create")
def keys_create(
    kind: Annotated[KeyKind, typer.Option(help="company, ats or platform")],
    scope: Annotated[list[Scope], typer.Option(help="repeat for several scopes")],
    company: Annotated[str | None, typer.Option(help="company id (company keys)")] = None,
    ats: Annotated[str | None, typer.Option(help="ATS integration id (ATS keys)")] = None,
    name: Annotated[str, typer.Option(help="a label for people")] = "cli",
    environment: Annotated[str, typer.Option(help="live or test prefix")] = "live",
    database_url: DatabaseOption = None,
) -> None:
    """Create an API key and print only the key (for scripts)."""
    url = database_url_of(database_url)
    upgrade(url)
    database = Database(url)
    try:
        body = KeyIn.model_validate(
            {
                "name": name,
                "kind": kind,
                "companyId": uuid.UUID(company) if company else None,
                "atsIntegrationId": uuid.UUID(ats) if ats else None,
                "scopes": scope,
                "environment": environment,
            }
        )
        with database.transaction(write=True) as session:
            _, raw = keys_admin.create_key(session, body, utcnow())
    except TallyError as exc:
        _fail(exc)
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        database.dispose()
    typer.echo(raw)


def _limit_malloc_arenas() -> None:
    """Restart once with MALLOC_ARENA_MAX=2 unless the environment sets it.

    glibc gives each thread that allocates its own malloc arena and rarely
    returns their free memory; a server whose worker threads parse 1,000-event
    batches grew by 150 MB that way. The variable is read only at process
    start, hence the restart (same interpreter, same arguments).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or sys.platform != "linux":
        return
    os.environ["MALLOC_ARENA_MAX"] = "2"
    os.execv(sys.executable, sys.orig_argv)  # noqa: S606 - our own command line, re-run


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    demo: Annotated[bool, typer.Option(help="fill an empty database with demo data")] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=16, help="server processes (CPU-bound work runs in parallel)")
    ] = 1,
    database_url: DatabaseOption = None,
) -> None:
    """Migrate the database and serve the API (/docs, /openapi.json, /healthz)."""
    _limit_malloc_arenas()
    import uvicorn

    from tally.app import create_app

    settings = get_settings().model_copy(update={"database_url": database_url_of(database_url)})
    upgrade(settings.database_url)
    if demo:
        from tally.demo import run_demo

        if not run_demo(settings.database_url, host or settings.host, port or settings.port):
            err.print("serving the existing data as it is")
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "proxy_headers": settings.forwarded_allow_ips is not None,
        "http": "tally.server:NoDelayH11Protocol",
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Worker processes build their own app from the environment.
    os.environ["TALLY_DATABASE_URL"] = settings.database_url
    uvicorn.run("tally.app:create_app", factory=True, workers=workers, **options)


@app.command()
def demo(database_url: DatabaseOption = None) -> None:
    """Fill an empty database with demo data; print a key of each kind and a curl line."""
    from tally.demo import run_demo

    settings = get_settings()
    url = database_url_of(database_url)
    upgrade(url)
    if not run_demo(url, settings.host, settings.port):
        raise typer.Exit(1)


def main() -> None:
    app()
