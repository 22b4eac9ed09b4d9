"""Exact quantities: minutes and credits as integers of millionths.

Minutes and credits have at most six decimal places, so storing them as
integers scaled by 10**6 keeps every sum exact in SQL on both databases
(SQLite has no decimal type) and in Python. Decimal appears only at the edges:
parsing input, pricing, and rendering JSON.
"""

from decimal import Decimal, InvalidOperation

SCALE = 1_000_000
# Far beyond any quantity tally stores; bounds the work of scaling 1e999999.
MAX_DIGITS = 30


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

    Computed from the digits, never in Decimal arithmetic: its context would
    round 2.00000000000000001 to 2, flush 1e-999999999 to 0 and overflow on
    1e999999 (a 500), where each is a number tally must refuse.
    """
    if not number.is_finite():
        raise QuantityError("must be finite")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    significant = bytes(digits).rstrip(b"\0")  # trailing zeros say nothing
    if not significant:
        return 0
    exponent += len(digits) - len(significant)
    if exponent < -6:  # the last digit, not a zero, lies past the sixth place
        raise QuantityError("at most 6 decimal places")
    if number.adjusted() > MAX_DIGITS:
        raise QuantityError("too large")
    scaled: int = int("".join(map(str, significant))) * 10 ** (exponent + 6)
    return -scaled if sign else scaled


def from_scaled(scaled: int) -> Decimal:
    """The plain Decimal for millionths: 245500000 -> 245.5, 10000000 -> 10."""
    whole, fraction = divmod(abs(scaled), SCALE)
    sign = "-" if scaled < 0 else ""
    if fraction == 0:
        return Decimal(f"{sign}{whole}")
    return Decimal(f"{sign}{whole}.{fraction:06d}".rstrip("0"))
