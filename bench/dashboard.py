"""The dashboard in a real browser: first meaningful paint and view changes.

    .venv/bin/python -m bench.dashboard [--size 1000000] [--backend sqlite] [--repeats 15]

First meaningful paint is measured on `tally demo` data: from navigation to
the moment the first view with data is drawn (the page's `tally:view`
performance mark), the key already in the tab's sessionStorage, as a user
opening a bookmark. View changes are measured on the benchmark's cached
history of --size events (bench/data/, built like bench.run builds it): from
the `change` event of a control to the next animation frame after the view is
drawn (the trend lines of the companies table included, when the page
fetches them after the rest), for a company key, an ATS key of 50 companies
and a platform key of all 1,000, each --repeats rounds of the six changes.
Chromium is Debian's (/usr/bin/chromium). The writes (keys) go to a scratch
copy of the cached database, deleted at the end. PYTHONPATH=<other src>
measures another version of tally (its server and page) with this script.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import backends
from bench.config import BENCH_DIR, REPO, parse
from bench.load import Meta, obtain
from bench.measure import percentile, say
from bench.server import running
from tally.auth import admin as keys_admin
from tally.auth.schemas import KeyIn
from tally.core.instants import utcnow
from tally.db.engine import Database

CHROMIUM = os.environ.get("TALLY_TEST_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 1000}

# Each step: a control and the value it is set to; the sequence returns to its start.
CHANGES = [
    ("#granularity", "week"),
    ("#granularity", "day"),
    ("#time-zone", "Asia/Kolkata"),
    ("#time-zone", "UTC"),
    ("#period", "lastmonth"),
    ("#period", "30d"),
]
TIMED_CHANGE = """async ([selector, value]) => {
  const before = Number(document.body.dataset.loads || 0);
  const began = performance.now();
  const control = document.querySelector(selector);
  control.value = value;
  control.dispatchEvent(new Event("change", {bubbles: true}));
  const trendsPending = () => (document.body.dataset.trendsPending ?? "0") !== "0";
  while (Number(document.body.dataset.loads || 0) === before || trendsPending()) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  await new Promise((resolve) => requestAnimationFrame(resolve));
  return performance.now() - began;
}"""
FIRST_VIEW = """() => {
  const view = performance.getEntriesByName("tally:view")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {view: view.startTime, fcp: paint ? paint.startTime : null};
}"""


def _keys(url: str, meta: Meta) -> dict[str, str]:
    bodies = {
        "company (1 company)": {"kind": "company", "companyId": meta.company},
        "ATS (50 companies)": {"kind": "ats", "atsIntegrationId": meta.ats_q3},
        "platform (1,000 companies)": {"kind": "platform"},
    }
    database = Database(url)
    try:
        with database.transaction(write=True) as session:
            return {
                label: keys_admin.create_key(
                    session,
                    KeyIn.model_validate(body | {"name": "bench", "scopes": ["read:billing"]}),
                    utcnow(),
                )[1]
                for label, body in bodies.items()
            }
    finally:
        database.dispose()


@contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


def _open(browser: Any, base_url: str, key: str) -> Any:
    """A tab signed in with the key, showing the default view."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(600_000)
    page.goto(f"{base_url}/dashboard")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => Number(document.body.dataset.loads || 0) > 0")
    return page


def _first_paint(browser: Any, base_url: str, key: str, repeats: int) -> dict[str, Any]:
    page = _open(browser, base_url, key)
    views, paints = [], []
    for _ in range(repeats):
        page.reload()
        page.wait_for_function("() => Number(document.body.dataset.loads || 0) > 0")
        timing = page.evaluate(FIRST_VIEW)
        views.append(timing["view"])
        if timing["fcp"] is not None:
            paints.append(timing["fcp"])
    page.context.close()
    return {"firstView": _stats(views), "firstContentfulPaint": _stats(paints)}


def _view_changes(
    browser: Any, base_url: str, key: str, repeats: int, changes: list[tuple[str, str]]
) -> dict[str, Any]:
    page = _open(browser, base_url, key)
    timings: dict[str, list[float]] = {}
    for _ in range(repeats):
        for selector, value in changes:
            timings.setdefault(f"{selector}={value}", []).append(
                page.evaluate(TIMED_CHANGE, [selector, value])
            )
    page.context.close()
    every = [t for values in timings.values() for t in values]
    return {"all": _stats(every), **{name: _stats(values) for name, values in timings.items()}}


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 0.5), 1),
        "p95": round(percentile(ordered, 0.95), 1),
        "max": round(ordered[-1], 1),
    }


def _demo_server_paint(browser: Any, repeats: int) -> dict[str, Any]:
    """`tally demo` into a fresh SQLite file, then the first paint for its company key."""
    with tempfile.TemporaryDirectory(prefix="tally-bench-demo-") as folder:
        url = f"sqlite:///{Path(folder) / 'demo.db'}"
        env = os.environ | {"TALLY_DATABASE_URL": url}
        script = Path(sys.executable).with_name("tally")
        demo = subprocess.run(
            [str(script), "demo"], env=env, cwd=folder, capture_output=True, text=True, check=False
        )
        if demo.returncode != 0:
            raise RuntimeError(f"tally demo failed:\n{demo.stderr}")
        printed = demo.stdout
        keys = {
            line.split(":")[0].strip(): line.split()[2]
            for line in printed.splitlines()
            if " key:" in line
        }
        with running(url, workers=1) as server:
            base_url = f"http://127.0.0.1:{server.port}"
            return {
                kind: _first_paint(browser, base_url, keys[f"{kind} key"], repeats)
                for kind in ("company", "ATS", "platform")
            }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DIR / "data",
        help="cached databases (another for another version of tally's schema)",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--keys",
        nargs="+",
        choices=["company", "ATS", "platform"],
        default=["company", "ATS", "platform"],
    )
    parser.add_argument("--skip-demo", action="store_true", help="no first paint on demo data")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dashboard.json")
    args = parser.parse_args()
    config = parse(
        ["--sizes", str(args.size), "--backends", args.backend, "--data-dir", str(args.data_dir)]
    )
    results: dict[str, Any] = {"size": args.size, "backend": args.backend}
    with _browser() as browser:
        if not args.skip_demo:
            say("first meaningful paint on tally demo data")
            results["demoFirstPaint"] = _demo_server_paint(browser, args.repeats)
            _write(args.out, results)
        say(f"view changes at {args.size:,} events ({args.backend})")
        place, meta, _ = obtain(config, args.size, args.backend)
        work = backends.scratch_copy(place)
        try:
            keys = _keys(work.url, meta)
            with running(work.url, workers=1) as server:
                base_url = f"http://127.0.0.1:{server.port}"
                results["firstPaint"] = {}
                results["viewChange"] = {}
                for label, key in keys.items():
                    if label.split()[0] not in args.keys:
                        continue
                    say(f"   {label}")
                    results["firstPaint"][label] = _first_paint(
                        browser, base_url, key, args.repeats
                    )
                    results["viewChange"][label] = _view_changes(
                        browser, base_url, key, args.repeats, CHANGES
                    )
                    _write(args.out, results)
        finally:
            backends.drop(work)
    _write(args.out, results)
    print(json.dumps(results, indent=2))


def _write(path: Path, results: dict[str, Any]) -> None:
    """Results so far (a long run keeps what it measured)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
