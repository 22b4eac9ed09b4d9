"""Browser fixtures: a real `tally serve` on demo data, Debian's chromium driven by Playwright.

No browser can be downloaded here, so the tests drive the system's chromium
(TALLY_TEST_CHROMIUM, default /usr/bin/chromium). Without it they skip with
the command that installs it, unless CI=true, where they fail.
"""

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.servers import fresh_postgres_database
from tests.test_demo import TALLY, _demo, _env, _free_port, _keys, _stop, _wait_healthy

CHROMIUM = Path(os.environ.get("TALLY_TEST_CHROMIUM", "/usr/bin/chromium"))
INSTALL = "apt-get update && apt-get install -y chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "web"
BROWSER_TIME_ZONE = "Europe/Berlin"


@dataclass
class Site:
    """A served demo database: its address, the printed keys and a plan or two."""

    base_url: str
    keys: dict[str, str]
    backend: str

    def get(self, path: str, key: str, **params: Any) -> httpx2.Response:
        with httpx2.Client(base_url=self.base_url, trust_env=False, timeout=30) as client:
            return client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})

    def data(self, path: str, key: str, **params: Any) -> Any:
        response = self.get(path, key, **params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def send(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.keys['platform']}"}
        with httpx2.Client(base_url=self.base_url, trust_env=False, timeout=30) as client:
            response = client.request(method, path, json=body, headers=headers)
        assert response.status_code < 300, response.text
        return response.json()["data"]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"chromium not found at {CHROMIUM}; install it: {INSTALL}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    backend: str = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('web') / 'demo.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgresql_url"), "tally_web_") as url:
        yield url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize(
            "database_url",
            ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
            indirect=True,
            scope="module",
        )


def _add_plans(site: Site) -> None:
    """Plans for the company key's company and one more, so the allowance shows."""
    own = site.data("/billing/usage", site.keys["company"])["companies"][0]["companyId"]
    managed = site.data("/billing/usage", site.keys["ATS"])["companies"]
    other = next(c["companyId"] for c in managed if c["companyId"] != own)
    for company, allowance in ((own, 2000), (other, 300)):
        site.send(
            "PUT",
            f"/admin/companies/{company}/plan",
            {"allowance": allowance, "period": "month", "thresholds": [50, 80, 100]},
        )


@pytest.fixture(scope="module")
def site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`tally demo`, then `tally serve` on it, for every test of a module and backend."""
    _require_chromium()
    workdir = tmp_path_factory.mktemp("site")
    demo = _demo(database_url, workdir)
    assert demo.returncode == 0, demo.stderr
    port = _free_port()
    log = workdir / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(TALLY), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_env(database_url),
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url, process, log)
        backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        site = Site(base_url, _keys(demo.stdout), backend)
        _add_plans(site)
        yield site
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A browser tab on the site that records every request and console error."""

    page: Any
    site: Site
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Any, site: Site) -> Iterator[Tab]:
    context = browser.new_context(
        viewport={"width": 1440, "height": 1000},
        locale="en-US",
        timezone_id=BROWSER_TIME_ZONE,
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(60_000)  # generous: CI machines are shared
    recorded = Tab(page, site)

    def route(route: Any) -> None:
        url = route.request.url
        recorded.requests.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and recorded.errors.append(m.text))
    page.on("pageerror", lambda e: recorded.errors.append(str(e)))
    try:
        yield recorded
    finally:
        context.close()
    outside = [url for url in recorded.requests if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == [], "requests left 127.0.0.1"
