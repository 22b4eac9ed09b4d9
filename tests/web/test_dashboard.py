"""The dashboard in a real browser against a real `tally serve` on demo data.

For each kind of key: the page's numbers equal the API's for the same window,
the chart has the series' buckets, the CSV download is the CSV endpoint's,
the page passes axe-core, and nothing leaves 127.0.0.1 (see the `tab` fixture).
"""

from urllib.parse import urlsplit

import pytest

from tests.web.conftest import BROWSER_TIME_ZONE, Tab
from tests.web.dashboard import (
    NETWORK_401,
    api,
    assert_accessible,
    assert_chart_matches_series,
    assert_csv_matches_api,
    assert_numbers_match_api,
    assert_trends_match_series,
    change,
    loads,
    screenshots,
    series_requests,
    session_storage,
    shown_params,
    sign_in,
    title_of,
    wait_loaded,
    wait_trends,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_company_key_sees_its_plan_totals_chart_and_csv(tab: Tab) -> None:
    page, site = tab.page, tab.site
    key = site.keys["company"]
    sign_in(tab, key)

    assert session_storage(tab) == {"tally.apiKey": key}
    assert key not in page.url
    assert page.evaluate("document.cookie") == ""
    assert page.input_value("#time-zone") == BROWSER_TIME_ZONE
    assert page.input_value("#period") == "30d"
    assert page.is_hidden("#companies")
    usage = assert_numbers_match_api(tab, key)
    assert page.inner_text("#scope-title") == usage["companies"][0]["companyName"]

    plan = api(site, "/billing/allowance", key)["companies"][0]
    card = f"#allowance article[data-company-id='{plan['companyId']}']"
    for field, css in (("used", "used"), ("remaining", "remaining"), ("percentUsed", "percent")):
        assert title_of(tab, f"{card} .{css} .n") == plan[field]
    # The projection moves with the clock between the page's request and this one.
    projected = title_of(tab, f"{card} .projected-used .n")
    assert abs(projected - plan["projectedUsed"]) <= plan["projectedUsed"] / 1000

    days = assert_chart_matches_series(tab, key)
    assert days == 30
    change(tab, "#granularity", "week")
    assert assert_chart_matches_series(tab, key) in (5, 6)
    change(tab, "#granularity", "hour")
    change(tab, "#time-zone", "Asia/Kolkata")
    hours = assert_chart_matches_series(tab, key)
    assert hours == 30 * 24
    assert shown_params(tab)["start"].endswith(":30:00Z")  # local midnight in Kolkata
    assert_numbers_match_api(tab, key)
    assert_csv_matches_api(tab, key)

    change(tab, "#granularity", "day")
    change(tab, "#period", "lastmonth")
    assert_numbers_match_api(tab, key)
    assert_chart_matches_series(tab, key)
    assert "period=lastmonth" in page.url
    assert key not in page.url

    change(tab, "#period", "billing")
    assert shown_params(tab)["start"] == plan["periodStart"]
    assert_numbers_match_api(tab, key)
    assert_accessible(tab)
    screenshots(tab, "company")

    page.get_by_role("button", name="Sign out").click()
    assert session_storage(tab) == {}
    assert page.get_by_label("API key").is_visible()
    assert tab.errors == []


def test_ats_key_compares_and_narrows_to_a_company(tab: Tab) -> None:
    page, site = tab.page, tab.site
    key = site.keys["ATS"]
    sign_in(tab, key)

    usage = assert_numbers_match_api(tab, key)
    rows = page.locator("#company-table tbody tr")
    ids = [c["companyId"] for c in usage["companies"]]
    assert [rows.nth(i).get_attribute("data-company-id") for i in range(rows.count())] == ids
    assert_chart_matches_series(tab, key)
    assert_accessible(tab)
    screenshots(tab, "ats")

    def used_column() -> list[str]:
        cells = page.locator("#company-table tbody .used .n")
        return [cells.nth(i).get_attribute("title") or "" for i in range(cells.count())]

    page.get_by_role("button", name="Used", exact=True).click()
    ascending = sorted(used_column(), key=float)
    assert used_column() == ascending
    page.get_by_role("button", name="Used", exact=True).click()
    assert used_column() == ascending[::-1]
    assert page.locator("th[data-sort=used]").get_attribute("aria-sort") == "descending"

    target = usage["companies"][0]
    page.get_by_label("Filter companies").fill(target["companyName"][:4])
    assert rows.count() < len(ids)
    assert target["companyName"] in page.inner_text("#company-table tbody")
    assert "sort=used" in page.url

    before = loads(tab)
    page.get_by_role("link", name=target["companyName"]).focus()
    page.keyboard.press("Enter")  # keyboard, as much as a pointer
    wait_loaded(tab, before)
    assert f"company={target['companyId']}" in urlsplit(page.url).fragment
    assert page.inner_text("#scope-title") == target["companyName"]
    assert page.is_hidden("#companies")
    narrowed = assert_numbers_match_api(tab, key)
    assert narrowed["companies"] == [
        c
        for c in api(
            site, "/billing/usage", key, **{k: shown_params(tab)[k] for k in ("start", "end")}
        )["companies"]
        if c["companyId"] == target["companyId"]
    ]
    assert_chart_matches_series(tab, key)
    assert_csv_matches_api(tab, key)

    bookmark = page.url  # the view survives a reload: state in the URL, key in the tab
    page.reload()
    wait_loaded(tab, 0)
    assert page.url == bookmark
    assert page.inner_text("#scope-title") == target["companyName"]

    before = loads(tab)
    page.get_by_role("link", name="All companies").click()
    wait_loaded(tab, before)
    assert page.is_visible("#companies")
    assert tab.errors == []


def test_platform_key_sees_every_company_in_both_units(tab: Tab) -> None:
    page, site = tab.page, tab.site
    key = site.keys["platform"]
    sign_in(tab, key)

    usage = assert_numbers_match_api(tab, key)
    assert {"totalMinutesUsed", "totalCreditsUsed"} <= set(usage)
    assert page.locator("#company-table tbody tr").count() == len(usage["companies"]) >= 12
    wait_trends(tab)
    assert assert_trends_match_series(tab, key) == len(usage["companies"])
    assert page.is_visible("#unit")
    assert "minutes" in (page.locator("#chart").get_attribute("aria-label") or "")
    change(tab, "#unit", "credits")
    assert "credits" in (page.locator("#chart").get_attribute("aria-label") or "")
    assert "unit=credits" in page.url
    change(tab, "#period", "year")
    change(tab, "#granularity", "month")
    assert assert_chart_matches_series(tab, key) == 12
    assert_numbers_match_api(tab, key)
    assert_csv_matches_api(tab, key)
    plans = api(site, "/billing/allowance", key)["companies"]
    assert page.locator("#allowance article").count() == len(plans) >= 2
    assert_accessible(tab)
    screenshots(tab, "platform")

    change(tab, "#period", "custom")
    for field, day in (("#from", "2026-02-27"), ("#to", "2026-03-02")):
        before = loads(tab)
        page.fill(field, day)
        wait_loaded(tab, before)
    change(tab, "#granularity", "day")
    params = shown_params(tab)
    # Berlin midnights: 2026-02-27 00:00+01:00 to 2026-03-03 00:00+01:00, four days.
    assert (params["start"], params["end"]) == ("2026-02-26T23:00:00Z", "2026-03-02T23:00:00Z")
    assert assert_chart_matches_series(tab, key) == 4
    assert_numbers_match_api(tab, key)
    wait_trends(tab)
    assert assert_trends_match_series(tab, key) == len(usage["companies"])
    # Never every company's buckets: the chart's answer lists none or the drawn rows.
    asked = [r.get("companySeries", "all") for r in series_requests(tab)]
    assert "all" not in asked
    assert asked[0] == "none"
    drawn = ",".join(usage["companies"][i]["companyId"] for i in range(len(usage["companies"])))
    assert set(asked[1:]) == {drawn}
    # Exactly one usage and one series request per view after the first.
    usage_asked = [u for u in tab.requests if urlsplit(u).path == "/billing/usage"]
    assert len(usage_asked) == len(asked) - 1
    assert tab.errors == []


def test_wrong_and_revoked_keys_get_a_clear_message(tab: Tab) -> None:
    page, site = tab.page, tab.site
    page.goto(f"{site.base_url}/dashboard")
    page.get_by_label("API key").fill("sk_live_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    alert = page.locator("#sign-in-error")
    alert.filter(has_text="not accepted").wait_for()
    assert session_storage(tab) == {}
    assert page.is_hidden("#dashboard")
    assert_accessible(tab)
    screenshots(tab, "sign-in")

    company = api(site, "/billing/usage", site.keys["company"])["companies"][0]["companyId"]
    created = site.send(
        "POST",
        "/admin/api-keys",
        {"name": "web", "kind": "company", "companyId": company, "scopes": ["read:billing"]},
    )
    sign_in(tab, created["key"])
    site.send("DELETE", f"/admin/api-keys/{created['id']}")
    tab.page.select_option("#granularity", "week")
    alert.filter(has_text="not accepted").wait_for()
    assert session_storage(tab) == {}
    assert page.get_by_label("API key").is_visible()
    assert [e for e in tab.errors if NETWORK_401 not in e] == []


def test_an_ats_without_companies_sees_empty_states(tab: Tab) -> None:
    site = tab.site
    ats = site.send("POST", "/admin/ats-integrations", {"name": "Empty Partner"})
    created = site.send(
        "POST",
        "/admin/api-keys",
        {"name": "web", "kind": "ats", "atsIntegrationId": ats["id"], "scopes": ["read:billing"]},
    )
    sign_in(tab, created["key"])
    page = tab.page
    assert page.inner_text("#scope-title") == "All companies (0)"
    assert "No companies" in page.inner_text("#companies-empty")
    assert page.is_visible("#chart-empty")
    assert page.is_visible("#breakdown-empty")
    assert page.is_hidden("#allowance")
    assert title_of(tab, "#total-interviews .n") == 0
    assert_accessible(tab)
    assert tab.errors == []
