"""The dicts of the report views are exactly what the models of tally.reporting.schemas dump."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tally.companies.repository import CompanyRef
from tally.core.instants import format_instant
from tally.core.quantities import from_scaled
from tally.reporting import views
from tally.reporting.results import Sums, Usage
from tally.reporting.schemas import CompanyUsage, UsageBucket, UsageReport, UsageSeries
from tally.reporting.views import dumps
from tests.factories import Api
from tests.reporting.test_series_api import WINDOW, _world


def _data(api: Api, path: str, **params: Any) -> Any:
    response = api.get(path, **params)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)["data"]


def _same(model: Any, data: Any) -> None:
    dumped = json.loads(dumps(model.dump()), parse_float=Decimal)
    assert dumped == data
    assert list(dumped) == list(data)


def test_usage_matches_its_model(api: Api) -> None:
    _world(api)
    data = _data(api, "/billing/usage", **WINDOW)
    _same(UsageReport.model_validate(data), data)


def test_series_matches_its_model(api: Api) -> None:
    _world(api)
    data = _data(api, "/billing/usage/series", **WINDOW, granularity="day", timeZone="Asia/Kolkata")
    model = UsageSeries.model_validate(data)
    _same(model, data)
    for company, wire in zip(model.companies, data["companies"], strict=True):
        for bucket, raw in zip(company.buckets, wire["buckets"], strict=True):
            assert list(json.loads(dumps(bucket.dump()))) == list(raw)


# --- the text encoder, byte for byte against the models -------------------------------------

NAMES = st.text(min_size=1, max_size=12)  # quotes, backslashes, controls, astral planes
KEYS = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8)
SCALED = st.integers(min_value=0, max_value=10**18)
SUMS = st.builds(Sums, st.integers(0, 10**6), SCALED, SCALED)
USAGES = st.builds(
    lambda sums, interviews: Usage(sums, interviews),
    st.dictionaries(KEYS, SUMS, max_size=5),
    st.integers(0, 10**6),
)
COMPANIES = st.builds(CompanyRef, st.uuids(), NAMES, st.sampled_from(["minutes", "credits"]))


def _model_totals(company: CompanyRef, usage: Usage) -> dict[str, Any]:
    """A company's interval as plain Python builds it, for the models to validate."""
    unit = company.billing_system
    counted = sorted((key, sums) for key, sums in usage.by_cost_key.items() if sums.events)
    amount = {key: from_scaled(getattr(sums, unit)) for key, sums in counted}
    field = "minutesUsed" if unit == "minutes" else "creditsUsed"
    total = "totalMinutesUsed" if unit == "minutes" else "totalCreditsUsed"
    return {
        total: from_scaled(sum(getattr(sums, unit) for _, sums in counted)),
        "totalInterviews": usage.interviews,
        "breakdownByCostKey": [
            {"costKey": key, "events": sums.events, field: amount[key]} for key, sums in counted
        ],
    }


@settings(max_examples=300, deadline=None)
@given(company=COMPANIES, usage=USAGES)
def test_company_text_is_what_its_model_dumps(company: CompanyRef, usage: Usage) -> None:
    model = CompanyUsage.model_validate(
        {
            "companyId": company.id,
            "companyName": company.name,
            "billingSystem": company.billing_system,
        }
        | _model_totals(company, usage)
    )
    text = "{" + views.company_head(company) + "," + views.company_totals(company, usage) + "}"
    assert text == dumps(model.dump())


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(st.tuples(COMPANIES, USAGES), max_size=6))
def test_across_text_is_what_its_model_dumps(entries: list[tuple[CompanyRef, Usage]]) -> None:
    companies = [company for company, _ in entries]
    across = views.Across(companies)
    for company, usage in entries:
        across.add(company, usage)
    units = [
        unit for unit in ("minutes", "credits") if unit in {c.billing_system for c in companies}
    ]
    totals = dict.fromkeys(units, 0)
    per_key: dict[str, dict[str, Any]] = {}
    interviews = 0
    for company, usage in entries:
        interviews += usage.interviews
        for key, sums in usage.by_cost_key.items():
            if not sums.events:
                continue
            unit = company.billing_system
            merged = per_key.setdefault(key, {"events": 0} | dict.fromkeys(units, 0))
            merged["events"] += sums.events
            merged[unit] += getattr(sums, unit)
            totals[unit] += getattr(sums, unit)
    field = {"minutes": "minutesUsed", "credits": "creditsUsed"}
    total = {"minutes": "totalMinutesUsed", "credits": "totalCreditsUsed"}
    start, end = datetime(2026, 3, 29, tzinfo=UTC), datetime(2026, 3, 30, 0, 0, 1, 500, tzinfo=UTC)
    model = UsageBucket.model_validate(
        {"start": format_instant(start), "end": format_instant(end)}
        | {total[unit]: from_scaled(totals[unit]) for unit in units}
        | {
            "totalInterviews": interviews,
            "breakdownByCostKey": [
                {"costKey": key, "events": per_key[key]["events"]}
                | {field[unit]: from_scaled(per_key[key][unit]) for unit in units}
                for key in sorted(per_key)
            ],
        }
    )
    assert "{" + views.edges(start, end) + "," + across.fields() + "}" == dumps(model.dump())


@given(scaled=st.integers(min_value=-(10**18), max_value=10**18))
def test_an_amount_is_written_as_its_decimal(scaled: int) -> None:
    assert views.amount(scaled) == str(from_scaled(scaled))
