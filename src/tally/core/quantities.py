"""Exact quantities: minutes and credits as integers of millionths.

Minutes and credits have at most six decimal places, so storing them as
integers scaled by 10**6 keeps every sum exact in SQL on both databases
(SQLite has no decimal type) and in Python. Decimal appears only at the edges:
parsing input, pricing, and rendering JSON.

Input can hold any exponent (`1e999999`, `1e-999999999`) and any number of
digits: Decimal arithmetic on such a number in the default context overflows
(an exception), underflows to 0 or rounds to 28 digits (silent rounding). So
the size is checked from the leading digit's exponent first, and the scaling
runs in a context of 18 digits that traps Inexact: any rounding, underflow
included, is a refusal, never a silent change of the number.
"""

from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow

SCALE = 1_000_000
PLACES = 6
# Far above every bound of the SPEC (10,000 minutes, amounts below 10**9) and
# well inside a BIGINT of millionths (9.2 * 10**12 whole units).
MAX_INTEGER_DIGITS = 12
# Wide enough for every accepted number in millionths; any rounding raises Inexact.
_EXACT = Context(prec=MAX_INTEGER_DIGITS + PLACES, traps=[Inexact, InvalidOperation, Overflow])


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

    Exact for every finite Decimal: no overflow, and any rounding is an error.
    """
    if not number.is_finite():
        raise QuantityError("must be finite")
    if number.is_zero():
        return 0  # 0, -0, 0E+999999, 0E-999999
    if number.adjusted() >= MAX_INTEGER_DIGITS:  # the leading digit's power of ten
        raise QuantityError(f"too large (at most {MAX_INTEGER_DIGITS} digits before the point)")
    try:
        return int(_EXACT.to_integral_exact(_EXACT.scaleb(number, PLACES)))
    except Inexact as exc:  # a seventh decimal, or more digits than the context holds
        raise QuantityError(f"at most {PLACES} decimal places") from exc


def from_scaled(scaled: int) -> Decimal:
    """The plain Decimal for millionths: 245500000 -> 245.5, 10000000 -> 10."""
    whole, fraction = divmod(abs(scaled), SCALE)
    sign = "-" if scaled < 0 else ""
    if fraction == 0:
        return Decimal(f"{sign}{whole}")
    return Decimal(f"{sign}{whole}.{fraction:06d}".rstrip("0"))
