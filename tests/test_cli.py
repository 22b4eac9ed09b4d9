"""The `tally` command as people run it: a real process of the console script.

Every failure is exactly one line on stderr, starting with "error: ", with the
exit status `tally.cli_errors` documents, and never a traceback, SQL or a key.
A process costs about a second of start-up, so the long lists of cases run
through `tally.cli.main` in this process (the console script's own entry
point), and a sample of each list runs as a real process too.
"""

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tally.cli import main
from tally.cli_errors import INTERNAL, CliError, describe, redact
from tally.db.engine import Database
from tests.factories import Api
from tests.servers import TALLY, free_port

TIMEOUT = 60
LEAKS = ("Traceback", 'File "', "SELECT", "INSERT", "sqlalchemy", "pydantic", "sk_live_")


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    # A default database inside the test's directory, never the developer's tally.db.
    environment |= {"TALLY_DATABASE_URL": f"sqlite:///{cwd / 'default.db'}"} | env
    return subprocess.run(  # noqa: S603 - our own console script
        [str(TALLY), *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def failed(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """The one line of stderr of a failed run, checked."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for leak in LEAKS:
        assert leak not in result.stderr
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of its own; in-process runs never restart (see serve) nor see TALLY_*."""
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("TALLY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TALLY_DATABASE_URL", f"sqlite:///{tmp_path / 'default.db'}")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    return tmp_path


def call(capfd: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `tally ARGS` through the console script's function, in this process."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capfd.readouterr()
    code = exited.value.code
    return subprocess.CompletedProcess(args, code if isinstance(code, int) else 0, out, err)


# --- bad flags: Click's one-line usage errors ---------------------------------------------------

BAD_FLAGS = [
    (["serve", "--port", "99999"], "--port"),
    (["serve", "--port", "0"], "--port"),
    (["serve", "--workers", "0"], "--workers"),
    (
        [
            "keys",
            "create",
            "--kind",
            "company",
            "--scope",
            "read:billing",
            "--company",
            "not-a-uuid",
        ],
        "--company",
    ),
    (["keys", "create", "--kind", "ats", "--scope", "read:billing", "--ats", "nope"], "--ats"),
    (
        ["keys", "create", "--kind", "platform", "--scope", "admin", "--environment", "prod"],
        "--environment",
    ),
    (["keys", "create", "--kind", "nonsense", "--scope", "admin"], "--kind"),
    (["keys", "create", "--kind", "platform", "--scope", "nope"], "--scope"),
    (["keys", "create", "--kind", "platform"], "--scope"),
    (["keys", "create", "--kind", "platform", "--scope", "admin", "--name", ""], "name"),
    (["keys", "revoke", "not-a-uuid"], "ID"),
    (["events", "import", "/nonexistent/file.ndjson"], "does not exist"),
    (["events", "import", "x.ndjson", "--chunk-size", "0"], "--chunk-size"),
    (["bogus"], "bogus"),
    (["serve", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("args", "named"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_a_bad_flag_is_one_line_and_status_2(
    here: Path, capfd: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    (here / "x.ndjson").write_text("")
    failed(call(capfd, *args), 2, named)
    assert not (here / "default.db").exists(), "nothing opened before the flags were checked"


@pytest.mark.parametrize("index", [0, 3, 5, 6, 11])
def test_a_bad_flag_in_a_real_process(here: Path, index: int) -> None:
    args, named = BAD_FLAGS[index]
    failed(run(*args, cwd=here), 2, named)


# --- databases that cannot be opened ------------------------------------------------------------


def _unopenable(here: Path) -> dict[str, tuple[str, str]]:
    """URL -> (what the line shows of it, the reason in it)."""
    return {
        "sqlite:////nonexistent/dir/x.db": ("sqlite:////nonexistent/dir/x.db", "unable to open"),
        f"sqlite:///{here}": (f"sqlite:///{here}", "unable to open"),
        "postgresql://nobody@127.0.0.1:1/x": ("postgresql://nobody@127.0.0.1:1/x", "refused"),
        "postgresql://nobody:s3cret@127.0.0.1:1/x": ("nobody:***@127.0.0.1:1/x", "refused"),
        "garbage": ("sqlite:///FILE", "not a database URL"),
        str(here): ("sqlite:///FILE", "not a database URL"),
        "mysql://a@127.0.0.1/x": ("mysql://a@127.0.0.1/x", "not a database URL"),
    }


@pytest.mark.parametrize("index", range(7))
def test_an_unopenable_database_is_one_line_naming_it(
    here: Path, capfd: pytest.CaptureFixture[str], index: int
) -> None:
    url, (shown, reason) = list(_unopenable(here).items())[index]
    line = failed(call(capfd, "keys", "list", "--database-url", url), 2, shown, reason)
    assert "s3cret" not in line


@pytest.mark.parametrize("index", [0, 3, 4])
def test_an_unopenable_database_in_a_real_process(here: Path, index: int) -> None:
    url, (shown, reason) = list(_unopenable(here).items())[index]
    line = failed(run("verify", cwd=here, TALLY_DATABASE_URL=url), 2, shown, reason)
    assert "s3cret" not in line


COMMANDS = [
    ["migrate"],
    ["keys", "list"],
    ["keys", "list", "--json"],
    ["keys", "create", "--kind", "platform", "--scope", "admin"],
    ["keys", "revoke", "6f2c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13"],
    ["verify"],
    ["events", "import", "x.ndjson"],
    ["demo"],
    ["serve"],  # on a free port
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_reports_an_unreachable_database_in_one_line(
    here: Path, capfd: pytest.CaptureFixture[str], command: list[str]
) -> None:
    (here / "x.ndjson").write_text("")
    if command[0] == "serve":
        command = ["serve", "--port", str(free_port())]
    url = "postgresql://nobody:s3cret@127.0.0.1:1/x"
    line = failed(call(capfd, *command, "--database-url", url), 2, "refused")
    assert "nobody:***@127.0.0.1:1/x" in line
    assert "s3cret" not in line


# --- tally serve: addresses -------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_on_a_port_in_use(here: Path, busy_port: int) -> None:
    result = run("serve", "--host", "127.0.0.1", "--port", str(busy_port), cwd=here)
    failed(result, 2, f"127.0.0.1:{busy_port}", "in use", "--port")
    assert not (here / "default.db").exists(), "the address is checked before the database"


@pytest.mark.parametrize(
    ("host", "reason"),
    [("192.0.2.1", "assign requested address"), ("no-such-host.invalid", "unknown host")],
)
def test_serve_on_a_host_it_cannot_bind(
    here: Path, capfd: pytest.CaptureFixture[str], host: str, reason: str
) -> None:
    failed(call(capfd, "serve", "--host", host, "--port", str(free_port())), 2, host, reason)


@pytest.mark.parametrize(("name", "value"), [("TALLY_PORT", "99999"), ("TALLY_PORT", "abc")])
def test_bad_settings_from_the_environment(here: Path, name: str, value: str) -> None:
    failed(run("serve", cwd=here, **{name: value}), 2, name)


# --- what works --------------------------------------------------------------------------------


def test_version(here: Path) -> None:
    result = run("--version", cwd=here)
    assert result.returncode == 0
    assert result.stdout.startswith("tally ")
    assert result.stdout.strip().split(" ")[1][0].isdigit()
    assert result.stderr == ""


def test_no_command_shows_the_help(here: Path) -> None:
    result = run(cwd=here)
    assert result.returncode == 2
    assert "Usage" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def _listed(db: Database, here: Path) -> list[dict[str, object]]:
    result = run("keys", "list", "--json", "--database-url", db.url, cwd=here)
    assert result.returncode == 0, result.stderr
    keys: list[dict[str, object]] = json.loads(result.stdout)
    return keys


def test_keys_create_list_and_revoke(api: Api, db: Database, here: Path) -> None:
    created = run(
        "keys", "create", "--kind", "platform", "--scope", "read:billing", "--name", "ops cli",
        "--database-url", db.url, cwd=here,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n", "stdout holds the key only"
    assert created.stderr == f"database: {redact(db.url)}\n"
    assert api.usage(key).status_code == 200

    listed = _listed(db, here)
    (mine,) = [item for item in listed if item["name"] == "ops cli"]
    assert key.startswith(str(mine["prefix"]))
    assert mine["kind"] == "platform"
    assert mine["scopes"] == ["read:billing"]
    assert mine["revokedAt"] is None
    assert set(mine) == {
        "id", "name", "prefix", "kind", "companyId", "atsIntegrationId", "scopes", "allowedIps",
        "createdAt", "expiresAt", "revokedAt", "lastUsedAt",
    }  # fmt: skip
    everything = run("keys", "list", "--json", "--database-url", db.url, cwd=here).stdout
    assert key not in everything
    assert key[len(str(mine["prefix"])) :] not in everything

    table = run("keys", "list", "--database-url", db.url, cwd=here, COLUMNS="300")
    assert table.returncode == 0
    assert "ops cli" in table.stdout
    assert str(mine["prefix"]) in table.stdout
    assert key not in table.stdout

    first = run("keys", "revoke", str(mine["id"]), "--database-url", db.url, cwd=here)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"revoked key {mine['id']} ({mine['prefix']}, 'ops cli') at ")
    assert api.usage(key).status_code == 401
    (after,) = [item for item in _listed(db, here) if item["id"] == mine["id"]]
    assert after["revokedAt"] is not None
    assert str(after["revokedAt"]) in first.stdout

    again = run("keys", "revoke", str(mine["id"]), "--database-url", db.url, cwd=here)
    assert again.returncode == 0
    assert again.stdout == (
        f"key {mine['id']} ({mine['prefix']}, 'ops cli') was already revoked at "
        f"{after['revokedAt']}; nothing changed\n"
    )
    (still,) = [item for item in _listed(db, here) if item["id"] == mine["id"]]
    assert still["revokedAt"] == after["revokedAt"]


def test_revoking_an_unknown_key(db: Database, here: Path) -> None:
    result = run(
        "keys", "revoke", "6f2c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13", "--database-url", db.url, cwd=here
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"database: {redact(db.url)}",
        "error: NOT_FOUND: no API key with this id",
    ]


def test_a_key_for_an_unknown_company_prints_no_key(db: Database, here: Path) -> None:
    result = run(
        "keys", "create", "--kind", "company", "--scope", "read:billing",
        "--company", "6f2c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13", "--database-url", db.url, cwd=here,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "error: VALIDATION_ERROR: companyId: no company with this id"
    )


def test_the_database_line_hides_the_password(postgresql_url: str, here: Path) -> None:
    # The test server trusts every connection, so any password opens it.
    url = make_url(postgresql_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    result = run("migrate", "--database-url", url, cwd=here)
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("database: postgresql://")
    assert ":***@" in first
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_the_default_database_is_named(here: Path) -> None:
    result = run("migrate", cwd=here)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"database: sqlite:///{here / 'default.db'}"


# --- the mapping itself -----------------------------------------------------------------------


def test_an_unexpected_exception_is_a_bug_report_line() -> None:
    message, status = describe(RuntimeError("SELECT secret FROM keys"))
    assert status == INTERNAL
    assert "RuntimeError" in message
    assert "SELECT" not in message


def test_cli_errors_keep_their_status() -> None:
    assert describe(CliError("no", 1)) == ("no", 1)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql://u@h/db?password=p&sslmode=require",
            "postgresql://u@h/db?sslmode=require",
        ),
        ("sqlite:///tally.db", "sqlite:///tally.db"),
        ("not a url", "(an unparsable URL)"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
