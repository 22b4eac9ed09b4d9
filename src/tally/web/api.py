"""Routes: the dashboard page and its static assets, served from the package.

The page is static: it holds no data and no key, and it talks to tally only
through the public API (with the key the user pastes), like any other client.
The server therefore only hands out files, each with headers that lock the
page down: a Content-Security-Policy allowing scripts, styles, images and
requests from this origin only (no inline script, no eval, no framing).
"""

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from tally.errors import NotFound

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # The files change with tally's version; revalidating costs little locally.
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/markdown; charset=utf-8",
}


def _walk(folder: Traversable, prefix: str) -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found |= _walk(entry, f"{name}/")
        elif any(entry.name.endswith(suffix) for suffix in MEDIA_TYPES):
            found[name] = entry
    return found


@cache
def _assets() -> dict[str, Traversable]:
    """Every servable file by its path under static/: a request names one or gets a 404."""
    return _walk(files("tally.web") / "static", "")


def _file(name: str) -> Response:
    asset = _assets().get(name)
    if asset is None:
        raise NotFound("no such file")
    media_type = next(t for suffix, t in MEDIA_TYPES.items() if name.endswith(suffix))
    return Response(asset.read_bytes(), media_type=media_type, headers=SECURITY_HEADERS)


@router.api_route("/", methods=["GET", "HEAD"])
def root() -> RedirectResponse:
    """The dashboard is the home page."""
    return RedirectResponse("/dashboard", status_code=307)


@router.api_route("/dashboard", methods=["GET", "HEAD"])
def dashboard() -> Response:
    """The dashboard page."""
    return _file("index.html")


@router.api_route("/dashboard/static/{name:path}", methods=["GET", "HEAD"])
def static(name: str) -> Response:
    """A file of the dashboard (JavaScript, styles, the vendored chart library)."""
    return _file(name)
