"""The dicts of the report views are exactly what the models of tally.reporting.schemas dump."""

import json
from decimal import Decimal
from typing import Any

from tally.reporting.schemas import UsageReport, UsageSeries
from tally.reporting.series import dumps
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
