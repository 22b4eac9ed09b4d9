"""Exact quantities: minutes and credits as integers of millionths.

Minutes and credits have at most six decimal places, so storing them as
integers scaled by 10**6 keeps every sum exact in SQL on both databases
(SQLite has no decimal type) and in Python. Decimal appears only at the edges:
parsing input, pricing, and rendering JSON.
"""

from decimal import Decimal, InvalidOperation

SCALE = 1_000_000


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
    """Millionths of an exact number with at most six decimal places."""
    scaled = number * SCALE
    if scaled != scaled.to_integral_value():
        raise QuantityError("at most 6 decimal places")
    return int(scaled)


def from_scaled(scaled: int) -> Decimal:
    """The plain Decimal for millionths: 245500000 -> 245.5, 10000000 -> 10."""
    whole, fraction = divmod(abs(scaled), SCALE)
    sign = "-" if scaled < 0 else ""
    if fraction == 0:
        return Decimal(f"{sign}{whole}")
    return Decimal(f"{sign}{whole}.{fraction:06d}".rstrip("0"))
