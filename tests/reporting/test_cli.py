"""`tally report`: the same rows as the API, files written whole, clear errors (both databases)."""

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from tally.cli import app as cli_app
from tally.db.engine import Database
from tests.factories import Api
from tests.reporting.test_series_api import WINDOW, _world

PARAMS = ["--start", WINDOW["start"], "--end", WINDOW["end"]]


def _run(db: Database, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, ["report", *args, "--database-url", db.url])
    return result.exit_code, result.stdout, result.stderr


def test_csv_equals_the_endpoint(api: Api, db: Database, tmp_path: Path) -> None:
    _world(api)
    zone = ["--granularity", "day", "--time-zone", "Europe/Berlin"]
    expected = api.get(
        "/billing/usage.csv", **WINDOW, granularity="day", timeZone="Europe/Berlin"
    ).text
    code, out, _ = _run(db, *PARAMS, *zone)
    assert code == 0
    # (the test runner's stdout turns CRLF into LF; the file below is compared byte for byte)
    assert out == expected.replace("\r\n", "\n")
    target = tmp_path / "usage.csv"
    code, out, _ = _run(db, *PARAMS, *zone, "--output", str(target))
    assert (code, out) == (0, "")
    assert target.read_bytes() == expected.encode()
    assert list(tmp_path.iterdir()) == [target]


def test_json_equals_the_endpoints(api: Api, db: Database) -> None:
    minutes, _ = _world(api)
    series = api.get("/billing/usage/series", **WINDOW, granularity="week", companyId=minutes)
    code, out, _ = _run(
        db, *PARAMS, "--granularity", "week", "--company", minutes, "--format", "json"
    )
    assert code == 0
    assert json.loads(out, parse_float=Decimal) == series.json(parse_float=Decimal)["data"]
    usage = api.usage(**WINDOW)
    code, out, _ = _run(db, *PARAMS, "--format", "json")
    assert code == 0
    assert json.loads(out, parse_float=Decimal) == usage.json(parse_float=Decimal)["data"]


def test_bad_options_exit_2_with_one_line(api: Api, db: Database, tmp_path: Path) -> None:
    target = tmp_path / "never.csv"
    for args, fragment in (
        (["--time-zone", "Mars/Olympus", "--granularity", "day"], "timeZone"),
        (["--granularity", "minute"], "granularity"),
        (["--company", "not-a-uuid"], "--company"),
        (["--company", "00000000-0000-0000-0000-000000000000"], "COMPANY_NOT_ACCESSIBLE"),
    ):
        code, out, error = _run(db, *PARAMS, *args, "--output", str(target))
        assert code == 2, error
        assert fragment in error
        assert "Traceback" not in error
        assert out == ""
    code, _, error = _run(db, "--start", "2026-02-01", "--end", "2026-01-01")
    assert code == 2
    assert "INVALID_DATE_RANGE" in error
    assert not target.exists()
