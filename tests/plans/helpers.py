"""Plan helpers shared by the plans and webhooks tests."""

from typing import Any

import simplejson
from httpx2 import Response

from tests.factories import Api


def put_plan(api: Api, company_id: str, body: Any, key: str | None = None) -> Response:
    content = body if isinstance(body, str) else simplejson.dumps(body, use_decimal=True)
    headers = api.auth(key or api.platform_key) | {"Content-Type": "application/json"}
    return api.client.put(f"/admin/companies/{company_id}/plan", content=content, headers=headers)


def plan(api: Api, company_id: str, **fields: Any) -> dict[str, Any]:
    body = {"allowance": 100, "period": "month"} | fields
    response = put_plan(api, company_id, body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data
