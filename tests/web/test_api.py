"""The dashboard's routes: the page, its assets, and the headers that lock it down."""

import re
from html.parser import HTMLParser
from importlib.resources import files

import pytest
from fastapi.testclient import TestClient

from tally.web.api import CONTENT_SECURITY_POLICY


class _Page(HTMLParser):
    """The scripts, styles and inline code of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline: list[str] = []
        self.style_attributes: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if any(name.startswith("on") for name in named) or "style" in named:
            self.style_attributes.append(tag)
        if tag == "script":
            self._in_script = True
            if named.get("src"):
                self.sources.append(str(named["src"]))
        if tag == "link" and named.get("href"):
            self.sources.append(str(named["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_root_redirects_to_the_dashboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"


def test_the_page_is_locked_down_and_has_no_inline_code(client: TestClient) -> None:
    response = client.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "connect-src", "img-src"):
        assert directives[directive] == "'self'", directive
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in response.headers

    page = _Page()
    page.feed(response.text)
    assert page.inline == []
    assert page.style_attributes == []
    assert page.sources, "the page loads its scripts and styles"
    for source in page.sources:
        assert source.startswith("/dashboard/static/"), source
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert asset.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("vendor/chart.umd.min.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_from_the_package(client: TestClient, name: str, media_type: str) -> None:
    response = client.get(f"/dashboard/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == (files("tally.web") / "static" / name).read_bytes()


def test_every_module_the_scripts_import_is_served(client: TestClient) -> None:
    scripts = [p for p in (files("tally.web") / "static").iterdir() if p.name.endswith(".js")]
    for script in scripts:
        for target in re.findall(r'from "\./([\w.-]+)"', script.read_text()):
            assert client.get(f"/dashboard/static/{target}").status_code == 200, target


@pytest.mark.parametrize(
    "name", ["nope.js", "../api.py", "..%2Fapi.py", "vendor/../../api.py", "index.py", ""]
)
def test_anything_else_is_a_404_in_the_envelope(client: TestClient, name: str) -> None:
    response = client.get(f"/dashboard/static/{name}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_the_page_is_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path == "/" or path.startswith("/dashboard") for path in paths)
