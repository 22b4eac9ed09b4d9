"""Small measuring helpers: percentiles, stage timers, progress lines."""

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

STAGES: dict[str, float] = {}
TIMES = "\N{MULTIPLICATION SIGN}"
NOTHING = "\N{EN DASH}"  # an empty cell


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds, with the sample count."""
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "p50": percentile(seconds, 0.50) * 1000,
        "p99": percentile(seconds, 0.99) * 1000,
        "max": max(seconds) * 1000,
    }


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage of the run; the durations go to the report."""
    say(f"-- {name}")
    began = time.perf_counter()
    try:
        yield
    finally:
        took = time.perf_counter() - began
        STAGES[name] = STAGES.get(name, 0.0) + took
        say(f"   {name}: {took:.1f} s")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def times(value: float | None) -> str:
    """A factor as text with a multiplication sign: two digits below 10, else whole."""
    if value is None:
        return NOTHING
    return f"{value:,.0f}{TIMES}" if value >= 10 else f"{value:.2g}{TIMES}"
