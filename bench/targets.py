"""The Targets table of issue 3, evaluated against a run's results."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.measure import TIMES, times

TARGET_SIZE = 10_000_000
BASE_SIZE = 1_000_000
P99_TARGETS = {"Q1": 3.0, "Q2": 5.0, "Q3": 25.0, "Q4": 200.0}


@dataclass(frozen=True)
class Row:
    measure: str
    target: str
    measured: str
    verdict: str  # met, missed, or not measured
    shortfall: str = ""  # how far from the target, when missed


def _size(size: int) -> str:
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000} M"
    return f"{size:,}"


def _at(size: int) -> str:
    return "" if size == TARGET_SIZE else f" (at {_size(size)}, not 10 M)"


def _check(
    measure: str, target: str, value: float | None, limit: float, at_most: bool, shown: str
) -> Row:
    if value is None:
        return Row(measure, target, "not measured", "not measured")
    met = value <= limit if at_most else value >= limit
    if met:
        return Row(measure, target, shown, "met")
    if at_most:
        gap = f"{value / limit:.2f}{TIMES} the limit"
    else:
        gap = f"{value / limit:.0%} of the target ({limit / value:.2f}{TIMES} short)"
    return Row(measure, target, shown, "missed", gap)


def _p99_rows(largest: dict[str, Any]) -> list[Row]:
    rows = []
    for name, limit in P99_TARGETS.items():
        value = largest["queries"][name]["in_process"]["p99"]
        measure = f"{name} p99 at 10 M events, in-process{_at(largest['size'])}"
        rows.append(_check(measure, f"≤ {limit:g} ms", value, limit, True, f"{value:.2f} ms"))
    return rows


def scaling(runs: list[dict[str, Any]]) -> tuple[int, int, dict[str, float]] | None:
    """(large size, small size, p50 ratio per query): 10 M / 1 M when both ran."""
    sizes = sorted(run["size"] for run in runs)
    if len(sizes) < 2:
        return None
    large = TARGET_SIZE if TARGET_SIZE in sizes else sizes[-1]
    small = BASE_SIZE if BASE_SIZE in sizes and large > BASE_SIZE else sizes[0]
    by_size = {run["size"]: run for run in runs}
    ratios = {
        name: by_size[large]["queries"][name]["in_process"]["p50"]
        / by_size[small]["queries"][name]["in_process"]["p50"]
        for name in P99_TARGETS
    }
    return large, small, ratios


def _scaling_row(runs: list[dict[str, Any]]) -> Row:
    measure = "Q1-Q4 p50 at 10 M / p50 at 1 M"
    found = scaling(runs)
    if found is None:
        return Row(measure + " (needs two sizes)", "≤ 1.3", "not measured", "not measured")
    large, small, ratios = found
    if (large, small) != (TARGET_SIZE, BASE_SIZE):
        measure += f" (measured {_size(large)} / {_size(small)})"
    worst = max(ratios, key=lambda name: ratios[name])
    shown = ", ".join(f"{name} {value:.2f}" for name, value in ratios.items())
    return _check(measure, "≤ 1.3", ratios[worst], 1.3, True, shown)


def _best(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], float | None]) -> Any:
    values = [value for value in map(key, runs) if value is not None]
    return max(values) if values else None


def _import_rate(run: dict[str, Any]) -> float | None:
    rate = run.get("import", {}).get("events_per_s")
    return None if rate is None else float(rate)


def _ingest_rows(largest: dict[str, Any]) -> list[Row]:
    http = max(largest["http_ingest"], key=lambda item: item["events_per_s"])
    http_rate = http["events_per_s"]
    rows = [
        _check(
            f"HTTP ingestion, batches of 1,000, durable{_at(largest['size'])}",
            "≥ 25,000 events/s",
            http_rate,
            25_000,
            False,
            f"{http_rate:,.0f} events/s ({http['clients']} clients)",
        )
    ]
    rate = _import_rate(largest)
    shown = f"{rate:,.0f} events/s" if rate is not None else "skipped"
    measure = f"`tally events import`{_at(largest['size'])}"
    rows.append(_check(measure, "≥ 50,000 events/s", rate, 50_000, False, shown))
    return rows


def _postgres_row(backend: str, pg_ran: bool) -> Row:
    measure, target = "PostgreSQL", "the same table, beside SQLite"
    if backend == "postgresql":
        return Row(measure, target, "this table", "met")
    if pg_ran:
        return Row(measure, target, "see the PostgreSQL table", "met")
    return Row(measure, target, "not run", "not measured")


def evaluate(runs: list[dict[str, Any]], backend: str, pg_ran: bool) -> list[Row]:
    """Every row of the Targets table for one backend's runs."""
    if not runs:
        return []
    largest = max(runs, key=lambda run: run["size"])
    rows = [*_p99_rows(largest), _scaling_row(runs)]
    naive = largest["queries"]["Q2"]["naive_over_tally_p50"]
    rows.append(
        _check(
            f"naive / tally for Q2 at 10 M{_at(largest['size'])}",
            f"≥ 100{TIMES}",
            naive,
            100,
            False,
            times(naive),
        )
    )
    rows += _ingest_rows(largest)
    rps = largest["rps"]["ratio"]
    measure = f"Q1 requests/s ÷ /healthz requests/s, same server{_at(largest['size'])}"
    rows.append(_check(measure, "≥ 0.5", rps, 0.5, False, f"{rps:.2f}"))
    rows.append(_postgres_row(backend, pg_ran))
    memory = max(run["server_peak_rss_mb"] for run in runs)
    measure = "server resident memory during the benchmark (peak, all sizes)"
    rows.append(_check(measure, "≤ 300 MB", memory, 300, True, f"{memory:.0f} MB"))
    return rows
