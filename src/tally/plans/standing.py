"""Where a company stands against its plan: exact arithmetic on millionths.

Every figure is computed from integers of millionths with Decimal at a
precision far beyond the inputs, then rounded once, half-even, to the places
SPEC section 8 fixes (2 for percentUsed, 6 for projectedUsed).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

from tally.core.instants import to_micros
from tally.core.quantities import SCALE, from_scaled
from tally.plans.periods import Window

_EXACT = Context(prec=60)
CENT = Decimal("0.01")
MILLIONTH = Decimal("0.000001")


def reached(used: int, allowance: int, threshold: int) -> bool:
    """used / allowance * 100 >= threshold, in integers."""
    return used * 100 >= threshold * allowance


@dataclass(frozen=True, slots=True)
class Standing:
    used: Decimal
    remaining: Decimal
    percent_used: Decimal
    projected_used: Decimal
    exceeded: bool


def _plain(value: Decimal, places: Decimal) -> Decimal:
    """Rounded half-even, then shown without trailing zeros (100, not 100.00).

    Not through to_scaled: a tiny allowance makes percentUsed and
    projectedUsed far larger than any quantity (10**14 %), and those are
    answers, not a 500. 60 digits hold every figure of a BIGINT of millionths.
    """
    rounded = value.quantize(places, rounding=ROUND_HALF_EVEN, context=_EXACT)
    if rounded == rounded.to_integral_value():
        return Decimal(int(rounded))
    return rounded.normalize(context=_EXACT)


def standing(allowance: int, used: int, window: Window, now: datetime) -> Standing:
    """Figures of GET /billing/allowance for `used` millionths at `now` in `window`."""
    percent = _EXACT.divide(Decimal(used * 100), Decimal(allowance))
    elapsed = to_micros(now) - to_micros(window.start)
    length = to_micros(window.end) - to_micros(window.start)
    if elapsed > 0:
        projected = _EXACT.divide(
            _EXACT.multiply(Decimal(used), Decimal(length)), Decimal(elapsed * SCALE)
        )
    else:
        projected = from_scaled(used)
    return Standing(
        used=from_scaled(used),
        remaining=from_scaled(allowance - used),
        percent_used=_plain(percent, CENT),
        projected_used=_plain(projected, MILLIONTH),
        exceeded=used > allowance,
    )
