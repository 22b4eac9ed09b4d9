"""Driving the dashboard page: signing in, waiting for views, reading what it shows."""

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.web.conftest import ARTIFACTS, Site, Tab

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
README_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
NETWORK_401 = "the server responded with a status of 401"


def loads(tab: Tab) -> int:
    return int(tab.page.evaluate("Number(document.body.dataset.loads || 0)"))


def wait_loaded(tab: Tab, after: int) -> None:
    """Wait until the page has drawn a view after the `after`-th one."""
    tab.page.wait_for_function("n => Number(document.body.dataset.loads || 0) > n", arg=after)


def sign_in(tab: Tab, key: str, fragment: str = "") -> None:
    page = tab.page
    page.goto(f"{tab.site.base_url}/{fragment}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    wait_loaded(tab, 0)
    assert page.is_visible("#dashboard")


def change(tab: Tab, selector: str, value: str) -> None:
    before = loads(tab)
    tab.page.select_option(selector, value)
    wait_loaded(tab, before)


def exact(response_text: str) -> Any:
    return json.loads(response_text, parse_float=Decimal)["data"]


def api(site: Site, path: str, key: str, **params: Any) -> Any:
    response = site.get(path, key, **{k: v for k, v in params.items() if v})
    assert response.status_code == 200, response.text
    return exact(response.text)


def shown_params(tab: Tab) -> dict[str, str]:
    """The parameters of what the page shows, read from the page itself."""
    page = tab.page
    period = page.locator("#period-text")
    fragment = parse_qs(urlsplit(page.url).fragment)
    return {
        "start": period.get_attribute("data-start") or "",
        "end": period.get_attribute("data-end") or "",
        "companyId": fragment.get("company", [""])[0],
        "granularity": page.input_value("#granularity"),
        "timeZone": page.input_value("#time-zone"),
    }


def title_of(tab: Tab, selector: str) -> Decimal:
    """The exact value behind a formatted number (its title attribute)."""
    title = tab.page.locator(selector).get_attribute("title")
    assert title is not None, selector
    return Decimal(title)


def assert_numbers_match_api(tab: Tab, key: str) -> dict[str, Any]:
    """Totals and breakdown on the page equal GET /billing/usage for the same window."""
    params = shown_params(tab)
    usage = api(
        tab.site, "/billing/usage", key, **{k: params[k] for k in ("start", "end", "companyId")}
    )
    for field, element in (("totalMinutesUsed", "minutes"), ("totalCreditsUsed", "credits")):
        present = tab.page.locator(f"#total-{element}").count() == 1
        assert present == (field in usage), field
        if present:
            assert title_of(tab, f"#total-{element} .n") == usage[field]
    assert title_of(tab, "#total-interviews .n") == usage["totalInterviews"]
    events = sum(entry["events"] for entry in usage["breakdownByCostKey"])
    assert title_of(tab, "#total-events .n") == events
    rows = tab.page.locator("#breakdown-table tbody tr")
    assert rows.count() == len(usage["breakdownByCostKey"])
    for i, entry in enumerate(usage["breakdownByCostKey"]):
        row = f"#breakdown-table tbody tr:nth-child({i + 1})"
        assert tab.page.locator(row).get_attribute("data-cost-key") == entry["costKey"]
        assert title_of(tab, f"{row} .events .n") == entry["events"]
        for unit in ("minutes", "credits"):
            if f"{unit}Used" in entry:
                assert title_of(tab, f"{row} .{unit} .n") == entry[f"{unit}Used"]
    return dict(usage)


def assert_chart_matches_series(tab: Tab, key: str) -> int:
    params = shown_params(tab)
    series = api(tab.site, "/billing/usage/series", key, **params)
    buckets = int(tab.page.locator("#chart-figure").get_attribute("data-buckets") or -1)
    assert buckets == len(series["buckets"]) > 0, params
    return buckets


def assert_csv_matches_api(tab: Tab, key: str) -> None:
    page = tab.page
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    path = download.value.path()
    response = tab.site.get(
        "/billing/usage.csv", key, **{k: v for k, v in shown_params(tab).items() if v}
    )
    assert response.status_code == 200, response.text
    assert Path(path).read_bytes() == response.content
    assert download.value.suggested_filename.startswith("usage-")


def assert_accessible(tab: Tab) -> None:
    """axe-core finds no serious or critical violation in the page as shown."""
    tab.page.evaluate(AXE.read_text())
    violations = tab.page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))"""
    )
    assert violations == [], violations


def screenshots(tab: Tab, name: str) -> None:
    """Screenshots at 1440 and 390 px in artifacts/web (TALLY_UPDATE_README_IMAGES=1: docs/img)."""
    if tab.site.backend != "sqlite":
        return  # one backend's pictures are enough; the views are the same
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = tab.page
    for width, height in ((1440, 1000), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)  # the chart redraws on resize
        path = ARTIFACTS / f"{name}-{tab.site.backend}-{width}.png"
        page.screenshot(path=path, full_page=True)
        if os.environ.get("TALLY_UPDATE_README_IMAGES") == "1":
            README_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_IMAGES / f"dashboard-{name}-{width}.png")
    page.set_viewport_size({"width": 1440, "height": 1000})


def session_storage(tab: Tab) -> dict[str, str]:
    return dict(tab.page.evaluate("({...sessionStorage})"))


def wait_trends(tab: Tab) -> None:
    """Wait until every drawn row of the companies table has its trend line."""
    tab.page.wait_for_function(
        """() => (document.body.dataset.trendsPending ?? "0") === "0"
            && !document.querySelector('#company-table svg.spark:not([data-values])')"""
    )


def series_requests(tab: Tab) -> list[dict[str, str]]:
    """The query of every request the page made for a series, in order."""
    return [
        {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        for url in tab.requests
        if urlsplit(url).path == "/billing/usage/series"
    ]


def assert_trends_match_series(tab: Tab, key: str) -> int:
    """Each drawn row's trend line is its company's buckets in GET /billing/usage/series."""
    series = api(tab.site, "/billing/usage/series", key, **shown_params(tab))
    by_id = {company["companyId"]: company for company in series["companies"]}
    lines = tab.page.locator("#company-table tbody tr")
    drawn = 0
    for i in range(lines.count()):
        row = lines.nth(i)
        company = by_id[row.get_attribute("data-company-id") or ""]
        field = "totalCreditsUsed" if company["billingSystem"] == "credits" else "totalMinutesUsed"
        values = row.locator("svg.spark").get_attribute("data-values") or ""
        assert [Decimal(v) for v in values.split()] == [b[field] for b in company["buckets"]]
        drawn += 1
    return drawn
