"""One focused test per rule of GET /billing/usage (SPEC section 2), on both databases.

Expected numbers are computed by hand in each test, small enough to check
by eye; tests/usage/test_properties.py compares random histories with the
naive reference instead.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from httpx2 import Response

from tally.core.instants import utcnow
from tests.factories import Api, event

RULES_SINCE = "2020-01-01T00:00:00Z"
JANUARY = {"start": "2026-01-01", "end": "2026-02-01"}


def ok(response: Response) -> dict[str, Any]:
    """The `data` of a 200, with every decimal as an exact Decimal."""
    assert response.status_code == 200, response.text
    data: dict[str, Any] = json.loads(response.text, parse_float=Decimal)["data"]
    return data


def error_code(response: Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


def ids(data: dict[str, Any]) -> list[str]:
    return [company["companyId"] for company in data["companies"]]


def minutes_company(
    company_id: str, name: str, total: Any, interviews: int, *breakdown: tuple[str, int, Any]
) -> dict[str, Any]:
    """The exact entry of a minutes company: no credits field anywhere."""
    return {
        "companyId": company_id,
        "companyName": name,
        "billingSystem": "minutes",
        "totalMinutesUsed": total,
        "totalInterviews": interviews,
        "breakdownByCostKey": [
            {"costKey": key, "events": events, "minutesUsed": amount}
            for key, events, amount in breakdown
        ],
    }


def credits_company(
    company_id: str, name: str, total: Any, interviews: int, *breakdown: tuple[str, int, Any]
) -> dict[str, Any]:
    """The exact entry of a credits company: no minutes field anywhere."""
    return {
        "companyId": company_id,
        "companyName": name,
        "billingSystem": "credits",
        "totalCreditsUsed": total,
        "totalInterviews": interviews,
        "breakdownByCostKey": [
            {"costKey": key, "events": events, "creditsUsed": amount}
            for key, events, amount in breakdown
        ],
    }


def patch_company(api: Api, company_id: str, body: dict[str, Any]) -> None:
    response = api.client.patch(
        f"/admin/companies/{company_id}", json=body, headers=api.auth(api.platform_key)
    )
    assert response.status_code == 200, response.text


# --- rule 1: which companies, in which order -------------------------------------------------


def test_company_key_sees_exactly_its_company_whatever_company_id_says(api: Api) -> None:
    acme = api.company("Acme Corp", "minutes")
    globex = api.company("Globex", "minutes")
    api.ingest(event(acme, minutes=5, interviewId="iv-a"), event(globex, minutes=7))
    key = api.key("company", acme)
    expected = [minutes_company(acme, "Acme Corp", 5, 1, ("interview_minutes", 1, 5))]
    for params in ({}, {"companyId": globex}, {"companyId": str(uuid.uuid4())}):
        data = ok(api.usage(key, start="2026-02-01", end="2026-03-01", **params))
        assert data["companies"] == expected, params
        assert data["totalMinutesUsed"] == 5


def test_ats_key_sees_the_companies_it_manages_and_company_id_narrows(api: Api) -> None:
    ours, theirs = api.ats("Greenhouse"), api.ats("Lever")
    acme = api.company("Acme Corp", "minutes", ours)
    globex = api.company("Globex", "minutes", ours)
    initech = api.company("Initech", "minutes", theirs)
    lone = api.company("Umbrella", "minutes")
    api.ingest(*(event(company, minutes=1) for company in (acme, globex, initech, lone)))
    key = api.key("ats", ours)
    window = {"start": "2026-02-01", "end": "2026-03-01"}

    everything = ok(api.usage(key, **window))
    assert ids(everything) == [acme, globex]
    assert everything["totalMinutesUsed"] == 2  # one minute each from the two managed ones
    narrowed = ok(api.usage(key, companyId=globex, **window))
    assert ids(narrowed) == [globex]
    assert narrowed["totalMinutesUsed"] == 1
    for outside in (initech, lone, str(uuid.uuid4())):
        response = api.usage(key, companyId=outside, **window)
        assert error_code(response, 403) == "COMPANY_NOT_ACCESSIBLE", outside


def test_platform_key_sees_every_company_and_company_id_narrows(api: Api) -> None:
    ats = api.ats()
    managed = api.company("Acme Corp", "minutes", ats)
    lone = api.company("Globex", "credits")
    api.rule(costKey="interview_minutes", baseCost=2, effectiveFrom=RULES_SINCE)
    api.ingest(event(managed, minutes=3), event(lone, minutes=3))
    window = {"start": "2026-02-01", "end": "2026-03-01"}

    everything = ok(api.usage(**window))
    assert ids(everything) == [managed, lone]
    assert (everything["totalMinutesUsed"], everything["totalCreditsUsed"]) == (3, 2)
    narrowed = ok(api.usage(companyId=lone, **window))
    assert ids(narrowed) == [lone]
    assert "totalMinutesUsed" not in narrowed
    assert narrowed["totalCreditsUsed"] == 2
    response = api.usage(companyId=str(uuid.uuid4()), **window)
    assert error_code(response, 403) == "COMPANY_NOT_ACCESSIBLE"


def test_companies_without_usage_are_listed_with_zeros_and_an_empty_breakdown(api: Api) -> None:
    idle = api.company("Idle Minutes", "minutes")
    idle_credits = api.company("Idle Credits", "credits")
    quiet = api.company("Quiet", "minutes")
    api.rule(costKey="interview_minutes", baseCost=1, effectiveFrom=RULES_SINCE)
    # Quiet's events all miss January: a test event, a voided one, one in February.
    api.ingest(
        event(quiet, "q-test", occurredAt="2026-01-10T00:00:00Z", isTest=True),
        event(quiet, "q-void", occurredAt="2026-01-10T00:00:00Z", interviewId="iv-q"),
        event(quiet, "q-feb", occurredAt="2026-02-01T00:00:00Z"),
        event(idle_credits, "c-feb", occurredAt="2026-02-01T00:00:00Z"),
    )
    assert api.void("q-void").status_code == 200
    data = ok(api.usage(**JANUARY))
    assert data["companies"] == [
        credits_company(idle_credits, "Idle Credits", 0, 0),
        minutes_company(idle, "Idle Minutes", 0, 0),
        minutes_company(quiet, "Quiet", 0, 0),
    ]
    assert data["totalMinutesUsed"] == 0
    assert data["totalCreditsUsed"] == 0
    assert data["totalInterviews"] == 0
    assert data["breakdownByCostKey"] == []


def test_companies_are_ordered_by_name_code_points_then_id(api: Api) -> None:
    high, low = "ffffffff-ffff-4fff-8fff-ffffffffffff", "00000000-0000-4000-8000-000000000000"
    # Created in neither name order nor id order.
    acme = api.company("acme", "minutes")
    api.company("Zeta", "credits", company_id=high)
    emile = api.company("Émile", "minutes")
    api.company("Zeta", "minutes", company_id=low)
    # Code points: "Z" (0x5A) < "a" (0x61) < "É" (0xC9); a locale collation would differ.
    assert ids(ok(api.usage(**JANUARY))) == [low, high, acme, emile]


def test_ats_managing_no_company_gets_an_empty_list_and_zero_totals(api: Api) -> None:
    # Usage of another ATS's company and of an unmanaged one must not leak in.
    busy = api.company("Acme Corp", "minutes", api.ats("Busy"))
    api.ingest(event(busy, interviewId="iv-1"), event(api.company("Globex", "minutes")))
    key = api.key("ats", api.ats("Empty"))
    data = ok(api.usage(key, start="2026-02-01", end="2026-03-01"))
    # No company in scope bills in either unit, so neither unit total is present (rule 3).
    assert data == {
        "period": {"start": "2026-02-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
        "companies": [],
        "totalInterviews": 0,
        "breakdownByCostKey": [],
    }


# --- rules 2 to 4: units and breakdowns ------------------------------------------------------


def test_units_never_mix_inside_a_company(api: Api) -> None:
    minutes = api.company("Acme Corp", "minutes")
    credits = api.company("Globex", "credits")
    # 2 + 0.5 per minute: the minutes company's events are priced too, yet show no credits.
    api.rule(
        costKey="interview_minutes",
        baseCost=2,
        costPerMinute=Decimal("0.5"),
        effectiveFrom=RULES_SINCE,
    )
    api.ingest(event(minutes, minutes=4), event(credits, minutes=4))
    data = ok(api.usage(start="2026-02-01", end="2026-03-01"))
    assert data["companies"] == [
        minutes_company(minutes, "Acme Corp", 4, 0, ("interview_minutes", 1, 4)),
        credits_company(credits, "Globex", 4, 0, ("interview_minutes", 1, 4)),
    ]
    # Absent means absent from the JSON text, not null and not 0.
    entries = json.loads(api.usage(start="2026-02-01", end="2026-03-01").text)["data"]
    assert "totalCreditsUsed" not in entries["companies"][0]
    assert "creditsUsed" not in entries["companies"][0]["breakdownByCostKey"][0]
    assert "totalMinutesUsed" not in entries["companies"][1]
    assert "minutesUsed" not in entries["companies"][1]["breakdownByCostKey"][0]


def test_top_level_carries_a_unit_iff_a_company_in_scope_bills_in_it(api: Api) -> None:
    minutes = api.company("Acme Corp", "minutes")
    credits = api.company("Globex", "credits")
    api.rule(
        costKey="interview_minutes",
        baseCost=1,
        costPerMinute=Decimal("0.5"),
        effectiveFrom=RULES_SINCE,
    )
    api.rule(costKey="sourcing_enrichment", baseCost=1, effectiveFrom=RULES_SINCE)
    api.ingest(
        event(minutes, minutes=10),
        event(minutes, minutes=Decimal("2.5")),
        event(credits, minutes=4),  # 1 + 4 * 0.5 = 3 credits
        event(credits, costKey="sourcing_enrichment", minutes=0),  # 1 credit
    )
    window = {"start": "2026-02-01", "end": "2026-03-01"}

    both = ok(api.usage(**window))
    assert (both["totalMinutesUsed"], both["totalCreditsUsed"]) == (Decimal("12.5"), 4)
    # `events` counts every company's events; each unit sums its own companies, 0 if none.
    assert both["breakdownByCostKey"] == [
        {
            "costKey": "interview_minutes",
            "events": 3,
            "minutesUsed": Decimal("12.5"),
            "creditsUsed": 3,
        },
        {"costKey": "sourcing_enrichment", "events": 1, "minutesUsed": 0, "creditsUsed": 1},
    ]
    only_minutes = ok(api.usage(companyId=minutes, **window))
    assert "totalCreditsUsed" not in only_minutes
    assert only_minutes["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 2, "minutesUsed": Decimal("12.5")}
    ]
    only_credits = ok(api.usage(companyId=credits, **window))
    assert "totalMinutesUsed" not in only_credits
    assert only_credits["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 1, "creditsUsed": 3},
        {"costKey": "sourcing_enrichment", "events": 1, "creditsUsed": 1},
    ]


def test_breakdown_has_cost_keys_with_counted_events_in_code_point_order(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(
        *(event(company, minutes=1, costKey=key) for key in ("b9", "ab", "a_b", "a1")),
        event(company, "test", costKey="zz_test", isTest=True),
        event(company, "voided", costKey="zz_voided"),
        event(company, "later", costKey="zz_later", occurredAt="2026-03-01T00:00:00Z"),
    )
    assert api.void("voided").status_code == 200
    data = ok(api.usage(start="2026-02-01", end="2026-03-01"))
    # "1" (0x31) < "_" (0x5F) < "b" (0x62) < "b9"; zz_* have no counted event in the window.
    expected = ["a1", "a_b", "ab", "b9"]
    assert [entry["costKey"] for entry in data["breakdownByCostKey"]] == expected
    (company_entry,) = data["companies"]
    assert [entry["costKey"] for entry in company_entry["breakdownByCostKey"]] == expected


# --- rules 5 and 6: what counts --------------------------------------------------------------


def test_an_event_counts_iff_start_le_occurred_at_lt_end_not_test_not_voided(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(
        event(company, "at-start", occurredAt="2026-01-10T00:00:00Z", minutes=1),
        event(company, "last-micro", occurredAt="2026-01-10T23:59:59.999999Z", minutes=2),
        event(company, "before", occurredAt="2026-01-09T23:59:59.999999Z", minutes=4),
        event(company, "at-end", occurredAt="2026-01-11T00:00:00Z", minutes=8),
        event(company, "test", occurredAt="2026-01-10T12:00:00Z", minutes=16, isTest=True),
        event(company, "voided", occurredAt="2026-01-10T12:00:00Z", minutes=32),
    )
    assert api.void("voided").status_code == 200
    data = ok(api.usage(start="2026-01-10T00:00:00Z", end="2026-01-11T00:00:00Z"))
    # Only at-start and last-micro: 1 + 2 minutes in 2 events.
    assert data["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 2, "minutesUsed": 3}
    ]
    assert data["totalMinutesUsed"] == 3


def test_an_interview_counts_in_the_period_of_its_first_counted_event(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(
        # Spans the month edge: counted in January only.
        event(company, "a1", occurredAt="2026-01-31T23:59:59Z", interviewId="iv-a"),
        event(company, "a2", occurredAt="2026-02-01T00:00:01Z", interviewId="iv-a"),
        event(company, "b1", occurredAt="2026-02-14T10:00:00Z", interviewId="iv-b"),
        event(company, "b2", occurredAt="2026-03-02T10:00:00Z", interviewId="iv-b"),
        # Without an interviewId: counts as an event, toward no interview.
        event(company, "loose", occurredAt="2026-01-15T10:00:00Z"),
    )
    months = ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]
    monthly = [
        ok(api.usage(start=start, end=end))["totalInterviews"] for start, end in pairwise(months)
    ]
    assert monthly == [1, 1, 0]
    assert ok(api.usage(start=months[0], end=months[-1]))["totalInterviews"] == 2
    february = ok(api.usage(start="2026-02-01", end="2026-03-01"))
    assert february["breakdownByCostKey"][0]["events"] == 2  # a2 and b1 count as events


def test_voids_and_test_events_move_or_remove_interviews(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(
        event(company, "m1", occurredAt="2026-01-20T10:00:00Z", interviewId="iv-moved"),
        event(company, "m2", occurredAt="2026-02-03T10:00:00Z", interviewId="iv-moved"),
        event(company, "g1", occurredAt="2026-01-21T10:00:00Z", interviewId="iv-gone"),
        event(company, "t1", occurredAt="2026-01-22T10:00:00Z", interviewId="iv-t", isTest=True),
    )
    january = {"start": "2026-01-01", "end": "2026-02-01"}
    february = {"start": "2026-02-01", "end": "2026-03-01"}
    assert ok(api.usage(**january))["totalInterviews"] == 2  # iv-moved, iv-gone; never iv-t
    for event_id in ("m1", "g1"):
        assert api.void(event_id).status_code == 200
    # iv-moved's first counted event is now m2, in February; iv-gone has none left.
    assert ok(api.usage(**january))["totalInterviews"] == 0
    assert ok(api.usage(**february))["totalInterviews"] == 1
    assert ok(api.usage(start="2025-01-01", end="2027-01-01"))["totalInterviews"] == 1


def test_a_late_earlier_event_moves_its_interview_back(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(event(company, "x2", occurredAt="2026-02-03T10:00:00Z", interviewId="iv-x"))
    assert ok(api.usage(start="2026-02-01", end="2026-03-01"))["totalInterviews"] == 1
    # Sent in a later batch: 2026-01-01T00:00:00Z once converted, in a month already closed.
    api.ingest(event(company, "x1", occurredAt="2025-12-31T23:00:00-01:00", interviewId="iv-x"))
    assert ok(api.usage(start="2026-02-01", end="2026-03-01"))["totalInterviews"] == 0
    assert ok(api.usage(**JANUARY))["totalInterviews"] == 1  # 2026-01-01T00:00:00Z


# --- rule 7: exact numbers -------------------------------------------------------------------


def _numbers_as_text(response: Response) -> dict[str, Any]:
    """The `data` with every number kept as the exact text the service printed."""
    assert response.status_code == 200, response.text
    data: dict[str, Any] = json.loads(response.text, parse_float=str, parse_int=str)["data"]
    return data


def test_sums_are_exact_and_printed_as_plain_numbers(api: Api) -> None:
    millionths = api.company("Millionths", "minutes")
    tenths = api.company("Tenths", "minutes")
    whole = api.company("Whole", "minutes")
    days = ("05", "15", "25", "26")
    api.ingest(
        event(tenths, minutes=Decimal("0.1"), occurredAt="2026-01-05T00:00:00Z"),
        event(tenths, minutes=Decimal("0.2"), occurredAt="2026-01-25T00:00:00Z"),
        *(
            event(millionths, minutes=Decimal("0.000001"), occurredAt=f"2026-01-{day}T00:00:00Z")
            for day in days[:3]
        ),
        *(
            event(whole, minutes=Decimal("0.25"), occurredAt=f"2026-01-{day}T01:00:00Z")
            for day in days
        ),
    )
    data = _numbers_as_text(api.usage(**JANUARY))
    # A float sum of 0.1 and 0.2 is 0.30000000000000004; 3 millionths are not 3E-6;
    # four quarters are 1, not 1.00.
    assert [c["totalMinutesUsed"] for c in data["companies"]] == ["0.000003", "0.3", "1"]
    assert data["totalMinutesUsed"] == "1.300003"
    assert [c["breakdownByCostKey"][0]["events"] for c in data["companies"]] == ["3", "2", "4"]


def test_credits_are_rounded_half_even_once_on_the_whole_sum(api: Api) -> None:
    company = api.company("Globex", "credits")
    for key, base in (("interview_minutes", "0.000001"), ("sourcing_enrichment", "0.000002")):
        api.rule(
            costKey=key,
            baseCost=Decimal(base),
            costPerMinute=Decimal("0.5"),
            effectiveFrom=RULES_SINCE,
        )
    api.ingest(
        event(company, minutes=Decimal("0.000001")),
        event(company, costKey="sourcing_enrichment", minutes=Decimal("0.000001")),
    )
    # 0.000001 + 0.0000005 = 0.0000015 rounds up to 0.000002 (rounding the product alone
    # first would give 0 and a total of 0.000001); 0.000002 + 0.0000005 rounds down.
    (entry,) = ok(api.usage(start="2026-02-01", end="2026-03-01"))["companies"]
    assert entry["breakdownByCostKey"] == [
        {"costKey": "interview_minutes", "events": 1, "creditsUsed": Decimal("0.000002")},
        {"costKey": "sourcing_enrichment", "events": 1, "creditsUsed": Decimal("0.000002")},
    ]
    assert entry["totalCreditsUsed"] == Decimal("0.000004")


def test_adjacent_periods_add_up_to_their_union_to_the_last_digit(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    amounts = ["0.1", "0.2", "0.000001", "9999.999999", "12.5"]
    api.ingest(
        *(
            event(
                company,
                minutes=Decimal(amount),
                occurredAt=f"2026-01-{5 + 6 * index:02d}T09:30:00Z",  # the 5th, 11th, ... 29th
                interviewId=f"iv-{index % 2}",
            )
            for index, amount in enumerate(amounts)
        )
    )
    # 04:00:00.5Z on the 17th: an edge inside an hour, just before the third event.
    cut = "2026-01-17T09:30:00.5+05:30"
    first = ok(api.usage(start="2026-01-01", end=cut))
    second = ok(api.usage(start=cut, end="2026-02-01"))
    union = ok(api.usage(**JANUARY))
    assert first["totalMinutesUsed"] == Decimal("0.3")
    assert second["totalMinutesUsed"] == Decimal("10012.5")  # 0.000001 + 9999.999999 + 12.5
    assert union["totalMinutesUsed"] == Decimal("10012.8")
    # Both interviews began before the cut, so only the first period counts them.
    assert (first["totalInterviews"], second["totalInterviews"], union["totalInterviews"]) == (
        2,
        0,
        2,
    )
    assert first["breakdownByCostKey"][0]["events"] + second["breakdownByCostKey"][0]["events"] == 5


# --- rule 8: the current billing system ------------------------------------------------------


def test_billing_system_is_the_current_one_and_credits_are_those_stored(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    # 2 + 0.1 per minute over 0 included: 10 minutes cost 3 credits. No enrichment rule.
    api.rule(
        costKey="interview_minutes",
        baseCost=2,
        costPerMinute=Decimal("0.1"),
        effectiveFrom=RULES_SINCE,
    )
    api.ingest(
        event(company, minutes=10),
        event(company, costKey="sourcing_enrichment", minutes=0),
    )
    window = {"start": "2026-02-01", "end": "2026-03-01"}
    as_minutes = ok(api.usage(**window))
    assert as_minutes["companies"] == [
        minutes_company(
            company, "Acme Corp", 10, 0, ("interview_minutes", 1, 10), ("sourcing_enrichment", 1, 0)
        )
    ]

    patch_company(api, company, {"billingSystem": "credits"})
    # A rule created now does not price the enrichment stored unpriced before.
    api.rule(costKey="sourcing_enrichment", baseCost=1, effectiveFrom=RULES_SINCE)
    as_credits = ok(api.usage(**window))
    assert as_credits["companies"] == [
        credits_company(
            company, "Acme Corp", 3, 0, ("interview_minutes", 1, 3), ("sourcing_enrichment", 1, 0)
        )
    ]
    assert "totalMinutesUsed" not in as_credits
    assert as_credits["totalCreditsUsed"] == 3

    patch_company(api, company, {"billingSystem": "minutes"})
    assert ok(api.usage(**window))["companies"] == as_minutes["companies"]


# --- rule 9 and the window -------------------------------------------------------------------


def test_period_echoes_the_resolved_window_in_utc(api: Api) -> None:
    cases = [
        ("2026-01-01T09:30:00.250+05:30", "2026-01-01T04:00:00.25Z"),
        ("2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:00.000001Z"),
        ("2026-01-01T00:00:00.500000-01:00", "2026-01-01T01:00:00.5Z"),
        ("2026-01-01T12:00:00+00:00", "2026-01-01T12:00:00Z"),
        ("2026-01-01T23:45:00+05:45", "2026-01-01T18:00:00Z"),
    ]
    for given, echoed in cases:
        data = ok(api.usage(start=given, end="2026-01-02T00:00:00Z"))
        assert data["period"] == {"start": echoed, "end": "2026-01-02T00:00:00Z"}, given


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_default_window_is_the_30_days_before_now(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    now = utcnow()
    api.ingest(
        event(company, "recent", occurredAt=(now - timedelta(hours=1)).isoformat(), minutes=1),
        event(company, "inside", occurredAt=(now - timedelta(days=29)).isoformat(), minutes=2),
        event(company, "outside", occurredAt=(now - timedelta(days=31)).isoformat(), minutes=4),
    )
    before = utcnow().replace(microsecond=0)
    data = ok(api.usage())
    after = utcnow()
    start, end = _instant(data["period"]["start"]), _instant(data["period"]["end"])
    assert before <= end <= after
    assert end - start == timedelta(days=30)
    assert data["totalMinutesUsed"] == 3  # recent and inside

    given_end = "2026-03-01T12:00:00Z"
    only_end = ok(api.usage(end=given_end))["period"]
    assert only_end == {"start": "2026-01-30T12:00:00Z", "end": given_end}

    before = utcnow().replace(microsecond=0)
    only_start = ok(api.usage(start="2026-01-01"))["period"]
    assert only_start["start"] == "2026-01-01T00:00:00Z"
    assert before <= _instant(only_start["end"]) <= utcnow()


def test_date_only_is_midnight_utc(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(
        event(company, occurredAt="2025-12-31T23:59:59.999999Z", minutes=1),
        event(company, occurredAt="2026-01-01T00:00:00Z", minutes=2),
        event(company, occurredAt="2026-01-01T00:30:00+01:00", minutes=4),  # 2025-12-31 23:30Z
        event(company, occurredAt="2026-01-01T23:59:59.999999Z", minutes=8),
        event(company, occurredAt="2026-01-02T00:00:00Z", minutes=16),
    )
    data = ok(api.usage(start="2026-01-01", end="2026-01-02"))
    assert data["period"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    assert data["totalMinutesUsed"] == 10


def test_time_without_offset_is_utc(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(
        event(company, occurredAt="2026-01-01T09:59:59.999999Z", minutes=1),
        event(company, occurredAt="2026-01-01T10:00:00Z", minutes=2),
        event(company, occurredAt="2026-01-01T10:59:59Z", minutes=4),
        event(company, occurredAt="2026-01-01T11:00:00Z", minutes=8),
    )
    naive = ok(api.usage(start="2026-01-01T10:00:00", end="2026-01-01T11:00:00"))
    explicit = ok(api.usage(start="2026-01-01T10:00:00Z", end="2026-01-01T11:00:00Z"))
    assert naive == explicit
    assert naive["period"] == {"start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:00:00Z"}
    assert naive["totalMinutesUsed"] == 6


def test_offsets_are_converted_to_utc(api: Api) -> None:
    company = api.company("Acme Corp", "minutes")
    api.ingest(
        event(company, occurredAt="2025-12-31T23:59:59Z", minutes=1),
        event(company, occurredAt="2026-01-01T00:00:00Z", minutes=2),
        event(company, occurredAt="2026-01-01T00:59:59.999999Z", minutes=4),
        event(company, occurredAt="2026-01-01T01:00:00Z", minutes=8),
    )
    # 05:30 at +05:30 and 23:00 the day before at -01:00 are both 00:00Z; 06:45 at +05:45 is 01:00Z.
    for start in ("2026-01-01T05:30:00+05:30", "2025-12-31T23:00:00-01:00"):
        data = ok(api.usage(start=start, end="2026-01-01T06:45:00+05:45"))
        assert data["period"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}
        assert data["totalMinutesUsed"] == 6, start


def test_start_not_before_end_is_invalid_date_range(api: Api) -> None:
    # The same instant in two offsets is an empty window.
    for start, end in [
        ("2026-01-01T05:30:00+05:30", "2026-01-01T00:00:00Z"),
        ("2026-01-02", "2026-01-01"),
    ]:
        assert error_code(api.usage(start=start, end=end), 400) == "INVALID_DATE_RANGE"
    start = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert error_code(api.usage(start=start), 400) == "INVALID_DATE_RANGE"  # end defaults to now
