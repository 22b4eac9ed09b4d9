"""Exact six-decimal quantities, checked against exact rational arithmetic."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tally.core.quantities import MAX_DIGITS, SCALE, QuantityError, from_scaled, to_scaled


def _reference(number: Decimal) -> int | None:
    """Millionths when exact, else None (a plain-Python reference, no Decimal context)."""
    scaled = Fraction(number) * SCALE
    if scaled.denominator != 1 or abs(number) >= Decimal(10) ** (MAX_DIGITS + 1):
        return None
    return int(scaled)


@given(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=-30, max_value=30),
)
@example(200000000000000001, -17)  # 2.00000000000000001
@example(1, -20)
@example(1250, -2)
@example(10000000, -7)
@example(10**40, -7)  # 1e33: exact but too large
def test_to_scaled_is_exact(coefficient: int, exponent: int) -> None:
    number = Decimal(f"{coefficient}e{exponent}")
    expected = _reference(number)
    if expected is None:
        with pytest.raises(QuantityError):
            to_scaled(number)
    else:
        assert to_scaled(number) == expected
        assert from_scaled(expected) == number


@pytest.mark.parametrize(
    "text", ["2.00000000000000001", "1e-999999999", "0.0000001", "1e999999", "1e-7"]
)
def test_numbers_that_are_not_six_decimal_quantities_are_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        to_scaled(Decimal(text))


@pytest.mark.parametrize(
    ("text", "scaled"),
    [("0e-999999999", 0), ("0e999999", 0), ("12.500000000", 12_500_000), ("1e2", 100_000_000)],
)
def test_exact_numbers_in_any_notation(text: str, scaled: int) -> None:
    assert to_scaled(Decimal(text)) == scaled


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        to_scaled(Decimal(text))
