"""The allowance figures, against exact rational arithmetic (fractions.Fraction)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from tally.plans.periods import Window
from tally.plans.standing import reached, standing

SCALE = 10**6


def half_even(value: Fraction, places: int) -> Fraction:
    scaled = value * 10**places
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Fraction(floor, 10**places)


def as_fraction(value: Decimal) -> Fraction:
    return Fraction(value)


START = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = Window(START, datetime(2026, 12, 1, tzinfo=UTC))


@settings(max_examples=400, deadline=None)
@given(
    allowance=st.integers(1, 10**15),
    used=st.integers(0, 10**16),
    elapsed=st.integers(1, 30 * 86400 * 10**6 - 1),
)
def test_figures_match_exact_rational_arithmetic(allowance, used, elapsed):
    now = START + timedelta(microseconds=elapsed)
    figures = standing(allowance, used, WINDOW, now)
    length = 30 * 86400 * 10**6
    assert as_fraction(figures.used) == Fraction(used, SCALE)
    assert as_fraction(figures.remaining) == Fraction(allowance - used, SCALE)
    assert as_fraction(figures.percent_used) == half_even(Fraction(used * 100, allowance), 2)
    projected = Fraction(used, SCALE) * length / elapsed
    assert as_fraction(figures.projected_used) == half_even(projected, 6)
    assert figures.exceeded == (used > allowance)
    for threshold in (1, 80, 100, 1000):
        assert reached(used, allowance, threshold) == (Fraction(used * 100, allowance) >= threshold)


def test_plain_numbers_without_trailing_zeros():
    figures = standing(100 * SCALE, 100 * SCALE, WINDOW, WINDOW.end - timedelta(days=15))
    assert str(figures.percent_used) == "100"
    assert str(figures.projected_used) == "200"
    assert str(standing(3 * SCALE, SCALE, WINDOW, WINDOW.end).percent_used) == "33.33"
    # 2/3 of a hundredth rounds up; exactly half a hundredth rounds to even.
    assert str(standing(3 * SCALE, 2 * SCALE, WINDOW, WINDOW.end).percent_used) == "66.67"
    assert str(standing(8 * SCALE, 1 * SCALE // 100 * 1, WINDOW, WINDOW.end).percent_used) == "0.12"
    assert str(standing(800 * SCALE, 1 * SCALE, WINDOW, WINDOW.end).percent_used) == "0.12"
