"""Exact scaling of any Decimal: no overflow, no silent underflow, no context rounding."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.core.quantities import (
    MAX_INTEGER_DIGITS,
    QuantityError,
    from_scaled,
    to_decimal,
    to_scaled,
)


def reference(number: Decimal) -> int | None:
    """Millionths by exact rational arithmetic, None when tally must refuse it."""
    exact = Fraction(number) * 1_000_000
    if exact.denominator != 1 or abs(Fraction(number)) >= 10**MAX_INTEGER_DIGITS:
        return None
    return exact.numerator


# Decimals from their parts, exponents small enough for Fraction to stay quick.
decimals = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=40),
    st.integers(-60, 30),
)


@given(decimals)
def test_to_scaled_agrees_with_exact_rationals(number: Decimal) -> None:
    expected = reference(number)
    if expected is None:
        with pytest.raises(QuantityError):
            to_scaled(number)
    else:
        assert to_scaled(number) == expected
        assert from_scaled(expected) == number


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e999999", "too large"),
        ("-1e999999", "too large"),
        ("1E+999999999", "too large"),
        ("1e13", "too large"),
        ("1e-999999", "at most 6 decimal places"),
        ("1e-999999999", "at most 6 decimal places"),
        ("2.00000000000000001", "at most 6 decimal places"),
        # 31 digits: the default context would round it to 2 and accept it.
        ("2.000000000000000000000000000001", "at most 6 decimal places"),
        ("1" * 100_000, "too large"),
    ],
)
def test_extreme_exponents_are_refused_quickly_and_by_name(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        to_scaled(to_decimal(Decimal(text)))


@pytest.mark.parametrize(
    ("text", "scaled"),
    [
        ("-0", 0),
        ("0E+999999", 0),
        ("0E-999999", 0),
        ("1.500000000000000000000000000000000000", 1_500_000),
        ("1E+3", 1_000_000_000),
        ("999999999999.999999", 999_999_999_999_999_999),
        ("1" + "0" * 100 + "E-100", 1_000_000),
    ],
)
def test_zeros_and_trailing_zeros_are_exact(text: str, scaled: int) -> None:
    assert to_scaled(Decimal(text)) == scaled


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), "1", True, None])
def test_non_numbers_are_refused(value: object) -> None:
    with pytest.raises(QuantityError):
        to_scaled(to_decimal(value))
