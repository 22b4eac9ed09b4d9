"""The envelope: built from models, exact decimals, absent fields absent, truthful schema."""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from tally.core.envelope import (
    Envelope,
    ErrorEnvelope,
    Number,
    OptionalNumber,
    absent,
    failure,
    success,
)


class Sample(BaseModel):
    id: uuid.UUID
    amount: Number
    optional: OptionalNumber = absent(serialization_alias="optionalAmount")
    at: datetime = Field(serialization_alias="at")


ID = uuid.UUID("6f2c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13")
AT = datetime(2026, 1, 31, 10, 30, tzinfo=UTC)


def test_success_renders_the_model_exactly() -> None:
    response = success(Sample(id=ID, amount=Decimal("245.5"), at=AT), 201)
    assert response.status_code == 201
    body = response.body.decode()
    assert body.startswith(
        '{"success":true,"data":{"id":"6f2c1a52-8d3e-4b7a-9c41-0e5d2f7a9b13",'
        '"amount":245.5,"at":"2026-01-31T10:30:00Z"},"error":null,"timestamp":"'
    )
    assert json.loads(body)["timestamp"].endswith("Z")


def test_an_absent_field_is_absent_and_a_present_one_a_number() -> None:
    without = json.loads(success(Sample(id=ID, amount=Decimal(0), at=AT)).body)
    assert "optionalAmount" not in without["data"]
    present = success(Sample(id=ID, amount=Decimal(0), optional=Decimal("0"), at=AT)).body
    assert b'"optionalAmount":0' in present


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, max_value=10**12))
def test_decimals_are_written_as_the_exact_json_number(amount: Decimal) -> None:
    body = success(Sample(id=ID, amount=amount, at=AT)).body
    parsed = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    assert parsed["data"]["amount"] == amount
    assert b'"amount":"' not in body


def test_failure_is_the_error_envelope() -> None:
    response = failure(403, "INSUFFICIENT_SCOPE", "no", {"requiredScope": "admin"})
    body = json.loads(response.body)
    assert response.status_code == 403
    assert body["success"] is False
    assert body["data"] is None
    assert body["error"] == {
        "code": "INSUFFICIENT_SCOPE",
        "message": "no",
        "details": {"requiredScope": "admin"},
    }
    ErrorEnvelope.model_validate(body)


def test_the_schemas_say_number_and_absent_not_null() -> None:
    schema = Envelope[Sample].model_json_schema(mode="serialization")
    sample = schema["$defs"]["Sample"]
    assert sample["properties"]["amount"]["type"] == "number"
    assert sample["properties"]["optionalAmount"]["type"] == "number"
    assert "optionalAmount" not in sample["required"]
    assert set(schema["required"]) == {"success", "data", "error", "timestamp"}
