"""Exact quantities: minutes and credits as integers of millionths.

Minutes and credits have at most six decimal places, so storing them as
integers scaled by 10**6 keeps every sum exact in SQL on both databases
(SQLite has no decimal type) and in Python. Decimal appears only at the edges:
parsing input, pricing, and rendering JSON.

Input can hold any exponent (`1e999999`, `1e-999999999`): Decimal arithmetic
on such a number overflows the context (an exception) or underflows to 0 (a
silent rounding). So a number is scaled from its digits and exponent with
integer arithmetic only, after its size has been checked.
"""

from decimal import Decimal, InvalidOperation

SCALE = 1_000_000
PLACES = 6
# Far above every bound of the SPEC (10,000 minutes, amounts below 10**9) and
# well inside a BIGINT of millionths (9.2 * 10**12 whole units).
MAX_INTEGER_DIGITS = 12


class QuantityError(ValueError):
    """A number that is not an exact six-decimal quantity."""


def to_decimal(value: object) -> Decimal:
    """A JSON number (int or Decimal, never bool or str) as a finite Decimal."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise QuantityError("must be a number")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - Decimal(int) cannot fail
        raise QuantityError("must be a number") from exc
    if not number.is_finite():
        raise QuantityError("must be finite")
    return number


def to_scaled(number: Decimal) -> int:
    """Millionths of an exact number with at most six decimal places.

    Exact for every finite Decimal: no context rounding, no overflow.
    """
    if not number.is_finite():
        raise QuantityError("must be finite")
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover - finite numbers have one
        raise QuantityError("must be finite")
    if not any(digits):
        return 0  # 0, -0, 0E+999999, 0E-999999 are all zero
    coefficient = "".join(map(str, digits))
    significant = coefficient.rstrip("0")
    exponent += len(coefficient) - len(significant)
    # Both checks come before any arithmetic, so the integer below is small.
    if exponent < -PLACES:
        raise QuantityError(f"at most {PLACES} decimal places")
    if len(significant) + exponent > MAX_INTEGER_DIGITS:
        raise QuantityError(f"too large (at most {MAX_INTEGER_DIGITS} digits before the point)")
    scaled: int = int(significant) * 10 ** (exponent + PLACES)
    return -scaled if sign else scaled


def from_scaled(scaled: int) -> Decimal:
    """The plain Decimal for millionths: 245500000 -> 245.5, 10000000 -> 10."""
    whole, fraction = divmod(abs(scaled), SCALE)
    sign = "-" if scaled < 0 else ""
    if fraction == 0:
        return Decimal(f"{sign}{whole}")
    return Decimal(f"{sign}{whole}.{fraction:06d}".rstrip("0"))
