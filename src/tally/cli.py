"""The `tally` command: thin wrappers over the services.

`main` is the console script: it runs the Typer app without Click's
standalone handling, so that every failure, a bad option included, ends as
one line on stderr with the exit status `tally.cli_errors` documents.
"""

import json
import os
import socket
import sys
import uuid
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import NoArgsIsHelpError

from tally.auth import admin as keys_admin
from tally.auth.models import ApiKey
from tally.auth.schemas import KeyIn
from tally.auth.scopes import KeyKind, Scope
from tally.cli_errors import CliError, debugging, describe, one_line_errors
from tally.cli_options import DatabaseOption, migrated_database
from tally.core.instants import format_instant, utcnow
from tally.db.engine import Database
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
app.command("verify")(one_line_errors(usage_cli.verify))
app.command("worker")(one_line_errors(webhooks_cli.worker))
app.command("report")(one_line_errors(reporting_cli.report))
err = Console(stderr=True)


class Environment(StrEnum):
    LIVE = "live"
    TEST = "test"


def _version() -> str:
    try:
        return version("tally")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tally {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """tally: usage metering and usage reporting."""


@app.command()
@one_line_errors
def migrate(database_url: DatabaseOption = None) -> None:
    """Bring the database to the latest schema."""
    migrated_database(database_url)
    err.print("database is at the latest schema")


@keys_app.command("create")
@one_line_errors
def keys_create(
    kind: Annotated[KeyKind, typer.Option(help="company, ats or platform")],
    scope: Annotated[list[Scope], typer.Option(help="repeat for several scopes")],
    company: Annotated[uuid.UUID | None, typer.Option(help="company id (company keys)")] = None,
    ats: Annotated[uuid.UUID | None, typer.Option(help="ATS integration id (ATS keys)")] = None,
    name: Annotated[str, typer.Option(help="a label for people")] = "cli",
    environment: Annotated[
        Environment, typer.Option(help="live or test prefix")
    ] = Environment.LIVE,
    rate_limit_minute: Annotated[
        int | None, typer.Option(min=1, help="requests a minute (default: the kind's)")
    ] = None,
    rate_limit_hour: Annotated[
        int | None, typer.Option(min=1, help="requests an hour (default: the kind's)")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an API key and print only the key (for scripts)."""
    body = KeyIn.model_validate(
        {
            "name": name,
            "kind": kind,
            "companyId": company,
            "atsIntegrationId": ats,
            "scopes": scope,
            "environment": environment.value,
            "rateLimitPerMinute": rate_limit_minute,
            "rateLimitPerHour": rate_limit_hour,
        }
    )
    database = Database(migrated_database(database_url))
    try:
        with database.transaction(write=True) as session:
            _, raw = keys_admin.create_key(session, body, utcnow())
    finally:
        database.dispose()
    typer.echo(raw)


def _instant(value: Any) -> str | None:
    return None if value is None else format_instant(value)


def _key_fields(row: ApiKey) -> dict[str, Any]:
    """A key as `keys list` shows it: never the key itself nor its hash."""
    return {
        "id": str(row.id),
        "name": row.name,
        "prefix": row.lookup_id,
        "kind": row.kind,
        "companyId": None if row.company_id is None else str(row.company_id),
        "atsIntegrationId": (
            None if row.ats_integration_id is None else str(row.ats_integration_id)
        ),
        "scopes": list(row.scopes),
        "allowedIps": row.allowed_ips,
        "createdAt": _instant(row.created_at),
        "expiresAt": _instant(row.expires_at),
        "revokedAt": _instant(row.revoked_at),
        "lastUsedAt": _instant(row.last_used_at),
    }


def _keys_table(keys: list[dict[str, Any]]) -> Table:
    columns = ("id", "name", "prefix", "kind", "owner", "scopes", "created", "expires")
    table = Table(*columns, "revoked", "last used", title=f"{len(keys)} API key(s)")
    for key in keys:
        owner = key["companyId"] or key["atsIntegrationId"] or "-"
        cells = (key["id"], key["name"], key["prefix"], key["kind"], owner, " ".join(key["scopes"]))
        times = (key["createdAt"], key["expiresAt"], key["revokedAt"], key["lastUsedAt"])
        table.add_row(*(escape(cell) for cell in cells), *(time or "-" for time in times))
    return table


@keys_app.command("list")
@one_line_errors
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array, for scripts")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """List every API key (never the key or its hash), oldest first."""
    database = Database(migrated_database(database_url))
    try:
        with database.transaction(write=False) as session:
            rows, _ = keys_admin.page_keys(session, 0, sys.maxsize)
            keys = [_key_fields(row) for row in rows]
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps(keys, ensure_ascii=False))
    else:
        Console().print(_keys_table(keys))


@keys_app.command("revoke")
@one_line_errors
def keys_revoke(
    key_id: Annotated[uuid.UUID, typer.Argument(metavar="ID", help="the key's id (keys list)")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a key (idempotent): it fails from the next request on."""
    database = Database(migrated_database(database_url))
    now = utcnow()
    try:
        with database.transaction(write=True) as session:
            row = keys_admin.revoke_key(session, key_id, now)
            label = f"key {row.id} ({row.lookup_id}, {row.name!r})"
            revoked_at = format_instant(row.revoked_at or now)
            already = row.revoked_at is not None and row.revoked_at < now
    finally:
        database.dispose()
    if already:
        typer.echo(f"{label} was already revoked at {revoked_at}; nothing changed")
    else:
        typer.echo(f"revoked {label} at {revoked_at}")


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


def _check_address(host: str, port: int) -> None:
    """Fail in one line, before migrating, when the server could not listen there."""
    where = f"{host}:{port}"
    if not 1 <= port <= 65535:  # TALLY_PORT; the --port flag is checked by Click
        raise CliError(f"cannot listen on {where}: a port is 1 to 65535; set --port or TALLY_PORT")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, OverflowError, UnicodeError) as exc:
        raise CliError(f"cannot listen on {where}: unknown host; give --host an address") from exc
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(
                f"cannot listen on {where}: {exc.strerror or exc}; "
                "choose another --port or --host, or stop what is using it"
            ) from exc


@app.command()
@one_line_errors
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port to listen on")] = None,
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
    from tally.observability.metrics import multiprocess_dir
    from tally.server import uvicorn_options

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    _check_address(host, port)
    url = migrated_database(database_url)
    settings = settings.model_copy(update={"database_url": url})
    if demo:
        from tally.demo import run_demo

        if not run_demo(settings.database_url, host, port):
            err.print("serving the existing data as it is")
    options: dict[str, Any] = uvicorn_options(settings, host, port)
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Worker processes build their own app from the environment.
    os.environ["TALLY_DATABASE_URL"] = settings.database_url
    with multiprocess_dir(workers):
        uvicorn.run("tally.app:create_app", factory=True, workers=workers, **options)


@app.command()
@one_line_errors
def demo(database_url: DatabaseOption = None) -> None:
    """Fill an empty database with demo data; print a key of each kind and a curl line."""
    from tally.demo import run_demo

    settings = get_settings()
    url = migrated_database(database_url)
    if not run_demo(url, settings.host, settings.port):
        raise typer.Exit(1)


def main(args: list[str] | None = None) -> None:
    """The console script: run a command; any failure is one line and an exit status."""
    try:
        status = app(args=args, prog_name="tally", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()  # the help text, as `tally` alone has always printed
        sys.exit(exc.exit_code)
    except (Exception, KeyboardInterrupt) as exc:  # usage errors; commands report their own
        if debugging():
            raise
        message, status = describe(exc)
        typer.echo(f"error: {message}", err=True)
    sys.exit(status if isinstance(status, int) else 0)
