"""The companies table of a large scope: the first 100 rows drawn, the rest on request.

Its own module (so its own `tally demo` site): the companies it adds must not
change what the platform key of tests/web/test_dashboard.py sees.
"""

import pytest

from tests.web.conftest import Tab
from tests.web.dashboard import (
    assert_accessible,
    assert_trends_match_series,
    change,
    series_requests,
    sign_in,
    wait_trends,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ROWS = 100  # COMPANY_ROWS in src/tally/web/static/render.js
COMPANIES = ROWS + 3


def test_a_large_scope_draws_the_first_rows_and_the_rest_on_request(tab: Tab) -> None:
    site, page = tab.site, tab.page
    ats = site.send("POST", "/admin/ats-integrations", {"name": "Many Companies"})
    names = [f"Paged {i:03d}" for i in range(COMPANIES)]
    for name in reversed(names):  # created out of order: the table sorts by name
        site.send(
            "POST",
            "/admin/companies",
            {"name": name, "billingSystem": "minutes", "atsIntegrationId": ats["id"]},
        )
    created = site.send(
        "POST",
        "/admin/api-keys",
        {"name": "web", "kind": "ats", "atsIntegrationId": ats["id"], "scopes": ["read:billing"]},
    )
    key = created["key"]
    sign_in(tab, key)
    wait_trends(tab)
    rows = page.locator("#company-table tbody tr th a")

    assert page.inner_text("#scope-title") == f"All companies ({COMPANIES})"
    assert rows.all_inner_texts() == names[:ROWS]
    assert assert_trends_match_series(tab, key) == ROWS
    # The chart's series without any company's buckets, then the drawn rows' trend lines.
    first = series_requests(tab)
    assert [r["companySeries"] for r in first[:1]] == ["none"]
    assert len(first) == 2
    assert len(first[1]["companySeries"].split(",")) == ROWS
    # A new view asks for the drawn rows' trend lines with its chart: one series request.
    change(tab, "#granularity", "week")
    wait_trends(tab)
    assert series_requests(tab)[2:] == [first[1] | {"granularity": "week"}]
    assert assert_trends_match_series(tab, key) == ROWS
    assert page.is_visible("#companies-more")
    assert page.inner_text("#companies-count") == f"Showing {ROWS} of {COMPANIES} companies."
    assert_accessible(tab)

    # The filter and the sort see every company, drawn or not.
    page.fill("#filter", names[-1])
    assert rows.all_inner_texts() == [names[-1]]
    assert page.is_hidden("#companies-more")
    page.fill("#filter", "")
    page.locator("#company-table th[data-sort=name] button").click()
    assert rows.all_inner_texts() == names[::-1][:ROWS]

    page.get_by_role("button", name="Show all").click()
    assert rows.all_inner_texts() == names[::-1]
    assert page.is_hidden("#companies-more")
    wait_trends(tab)
    assert assert_trends_match_series(tab, key) == COMPANIES
    # The filter, the sort and "Show all" asked only for the trend lines not yet there.
    later = [r["companySeries"].split(",") for r in series_requests(tab)[3:]]
    ids = [company_id for listed in later for company_id in listed]
    assert len(set(ids)) == len(ids) == COMPANIES - ROWS
    assert set(ids).isdisjoint(first[1]["companySeries"].split(","))
    assert tab.errors == []
