"""The page's own modules in the browser: messages and calendar arithmetic.

These need no data, so they run once, against `tally serve` on an empty
SQLite database, rather than on both backends' demo data.
"""

import subprocess
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.test_demo import TALLY, _env, _free_port, _stop, _wait_healthy
from tests.web.conftest import BROWSER_TIME_ZONE


@pytest.fixture(scope="module")
def page(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A tab on the dashboard of a server with an empty database."""
    workdir = tmp_path_factory.mktemp("bare")
    log = workdir / "serve.log"
    port = _free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(TALLY), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_env(f"sqlite:///{workdir / 'empty.db'}"),
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url, process, Path(log))
        context = browser.new_context(timezone_id=BROWSER_TIME_ZONE)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(f"{base_url}/dashboard")
        yield tab
        context.close()
        assert errors == []
    finally:
        _stop(process)


def test_every_refusal_gets_a_sentence(page: Any) -> None:
    """The messages of the API client, in the page's own module (429s need a limited key)."""
    messages = page.evaluate(
        """async () => {
            const {ApiError, explain} = await import("/dashboard/static/api.js");
            const cases = [[401, "INVALID_API_KEY", 0], [429, "RATE_LIMITED", 7],
                           [403, "INSUFFICIENT_SCOPE", 0], [403, "COMPANY_NOT_ACCESSIBLE", 0],
                           [503, "SERVICE_UNAVAILABLE", 2], [400, "VALIDATION_ERROR", 0]];
            return cases.map(([status, code, retry]) =>
                explain(new ApiError(status, code, "granularity: too many buckets", retry)));
        }"""
    )
    assert "not accepted" in messages[0]
    assert "Too many requests" in messages[1]
    assert "7 s" in messages[1]
    assert "read:billing" in messages[2]
    assert "not within this key's reach" in messages[3]
    assert "busy" in messages[4]
    assert "2 s" in messages[4]
    assert messages[5] == "granularity: too many buckets"


CALENDAR_ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]


def test_local_midnights_agree_with_zoneinfo(page: Any) -> None:
    """Every local midnight of two years in zones with odd offsets and shifts, against Python."""
    first = date(2026, 1, 1)
    days = [first + timedelta(days=i) for i in range(731)]
    expected = {
        zone: [
            int(datetime.combine(day, time(), ZoneInfo(zone)).timestamp() * 1000) for day in days
        ]
        for zone in CALENDAR_ZONES
    }
    found = page.evaluate(
        """async ([zones, days]) => {
            const {midnight} = await import("/dashboard/static/time.js");
            const out = {};
            for (const zone of zones) {
                out[zone] = days.map(([y, m, d]) => midnight(y, m, d, zone));
            }
            return out;
        }""",
        [CALENDAR_ZONES, [[d.year, d.month, d.day] for d in days]],
    )
    assert found == expected
