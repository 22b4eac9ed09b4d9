"""`tally demo` end to end: a real process fills an empty database, a real server
answers GET /billing/usage over HTTP with the keys it printed."""

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select

from tally.db.engine import Database
from tally.db.models import Base
from tests.servers import (
    BACKENDS,
    TALLY,
    free_port,
    fresh_database,
    serving,
    stop,
    wait_healthy,
)

KEY_LINE = re.compile(
    r"^\s*(company|ATS|platform) key:\s+(sk_live_[0-9A-Za-z]{43})\s", re.MULTILINE
)
CURL_LINE = re.compile(
    r'^\s*curl -s -H "Authorization: Bearer (\S+)" "(http://\S+)"$', re.MULTILINE
)
DEMO_TIMEOUT = 120


def _env(url: str) -> dict[str, str]:
    # The demo's curl line names the configured address; the server gets flags.
    return os.environ | {
        "TALLY_DATABASE_URL": url,
        "TALLY_HOST": "127.0.0.1",
        "TALLY_PORT": "8123",
        "TALLY_LOG_LEVEL": "warning",
    }


def _demo(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [str(TALLY), "demo"],
        env=_env(url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )


def _keys(output: str) -> dict[str, str]:
    return dict(KEY_LINE.findall(output))


def _row_counts(url: str) -> dict[str, int]:
    database = Database(url)
    try:
        with database.transaction(write=False) as session:
            return {
                table.name: session.scalar(select(func.count()).select_from(table)) or 0
                for table in Base.metadata.sorted_tables
            }
    finally:
        database.dispose()


FOLDED = {"usage_deltas", "usage_buckets", "usage_pairs"}


def _stored_counts(url: str) -> dict[str, int]:
    """Row counts of the tables only writers change (not the folder's)."""
    return {name: count for name, count in _row_counts(url).items() if name not in FOLDED}


# tests/web imports these from here.
_free_port = free_port
_stop = stop
_wait_healthy = wait_healthy

Serve = Callable[..., tuple[str, Path]]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start `tally serve` processes; every one is stopped when the test ends."""
    with serving(tmp_path) as start:

        def start_one(url: str, *flags: str) -> tuple[str, Path]:
            server = start(url, *flags, env=_env(url))
            return server.base_url, server.log

        yield start_one


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a database nobody has touched: a new SQLite file or PostgreSQL database."""
    with fresh_database(request, "demo") as url:
        yield url


def _usage(base_url: str, key: str, **params: str) -> dict[str, Any]:
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=10) as client:
        response = client.get(
            "/billing/usage", params=params, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _total(company: dict[str, Any]) -> Any:
    return company.get("totalMinutesUsed", company.get("totalCreditsUsed"))


def _busy(data: dict[str, Any]) -> list[str]:
    """Names of the companies with usage in the answer."""
    return [c["companyName"] for c in data["companies"] if _total(c) > 0]


def test_demo_fills_an_empty_database_and_its_keys_work_over_http(
    empty_url: str, tmp_path: Path, serve: Serve
) -> None:
    first = _demo(empty_url, tmp_path)
    assert first.returncode == 0, first.stderr
    keys = _keys(first.stdout)
    assert set(keys) == {"company", "ATS", "platform"}, first.stdout
    curl = CURL_LINE.search(first.stdout)
    assert curl is not None, first.stdout
    assert curl.groups() == (keys["company"], "http://127.0.0.1:8123/billing/usage")

    base_url, _ = serve(empty_url)
    own = _usage(base_url, keys["company"])
    assert len(own["companies"]) == 1
    assert own["companies"][0]["totalInterviews"] > 0
    assert len(_busy(own)) == 1

    managed = _usage(base_url, keys["ATS"])
    assert len(_busy(managed)) >= 2
    assert own["companies"][0]["companyId"] in {c["companyId"] for c in managed["companies"]}

    everyone = _usage(base_url, keys["platform"])
    assert len(everyone["companies"]) >= 12
    assert {c["billingSystem"] for c in everyone["companies"]} == {"minutes", "credits"}
    assert everyone["totalMinutesUsed"] > 0
    assert everyone["totalCreditsUsed"] > 0
    assert len(_busy(everyone)) > len(_busy(managed))

    # The running server folds usage_deltas into the running totals whenever it
    # likes: those tables' counts move on their own, their answers must not.
    before = _stored_counts(empty_url)
    second = _demo(empty_url, tmp_path)
    assert second.returncode == 1
    assert "already has data" in second.stderr
    assert _keys(second.stdout) == {}
    assert _stored_counts(empty_url) == before
    period = everyone["period"]
    assert _usage(base_url, keys["platform"], **period) == everyone


def test_serve_demo_fills_once_then_serves_what_is_there(tmp_path: Path, serve: Serve) -> None:
    url = f"sqlite:///{tmp_path / 'serve-demo.db'}"
    base_url, log = serve(url, "--demo")
    keys = _keys(log.read_text())
    assert set(keys) == {"company", "ATS", "platform"}
    assert f"http://127.0.0.1:{base_url.rsplit(':', 1)[1]}/billing/usage" in log.read_text()
    assert len(_busy(_usage(base_url, keys["company"]))) == 1

    again_url, again_log = serve(url, "--demo")
    assert "already has data" in again_log.read_text()
    assert _keys(again_log.read_text()) == {}
    assert len(_busy(_usage(again_url, keys["ATS"]))) >= 2
