"""Markdown tables of a run's results (one function per table)."""

from collections.abc import Sequence
from typing import Any

from bench.measure import NOTHING, ratio, times
from bench.queries import QUERIES
from bench.targets import Row, scaling


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _ms(stats: dict[str, Any] | None, key: str) -> str:
    if not stats or key not in stats:
        return NOTHING
    return f"{stats[key]:.2f}"


def _size(size: int) -> str:
    return f"{size:,}"


def targets(rows: list[Row]) -> list[str]:
    marks = {"met": "met", "missed": "**missed**", "not measured": "not measured"}
    return table(
        ("measure", "target", "measured", "verdict"),
        [(row.measure, row.target, row.measured, marks[row.verdict]) for row in rows],
    )


def latency(runs: list[dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, ...]] = []
    for run in sorted(runs, key=lambda item: item["size"]):
        for query in QUERIES:
            found = run["queries"][query.name]
            naive = found["naive"]
            factor = found["naive_over_tally_p50"]
            rows.append(
                (
                    _size(run["size"]),
                    f"{query.name}: {query.label}",
                    _ms(found["in_process"], "p50"),
                    _ms(found["in_process"], "p99"),
                    _ms(found.get("http"), "p50"),
                    _ms(found.get("http"), "p99"),
                    f"{_ms(naive, 'p50')} (n={naive['n']})",
                    times(factor),
                    "yes" if found["disagreements"] == 0 else f"**no ({found['disagreements']})**",
                )
            )
    header = (
        "events",
        "query",
        "in-process p50",
        "p99",
        "HTTP p50",
        "p99",
        "naive p50",
        "naive / tally p50",
        "naive agrees",
    )
    return table(header, rows)


def scaling_lines(runs: list[dict[str, Any]]) -> list[str]:
    found = scaling(runs)
    if found is None:
        return ["Only one history size was run: no scaling ratio."]
    large, small, ratios = found
    header = ("p50 ratio", *ratios)
    values = [f"{value:.2f}" for value in ratios.values()]
    return table(header, [(f"{_size(large)} / {_size(small)} events", *values)])


def ingestion(runs: list[dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, ...]] = []
    for run in sorted(runs, key=lambda item: item["size"]):
        limit = run["limit"]["rows_per_s"]
        for item in run["http_ingest"]:
            rate = item["events_per_s"]
            errors = f" ({len(item['errors'])} errors)" if item["errors"] else ""
            rows.append(
                (
                    _size(run["size"]),
                    f"HTTP, {item['clients']} client(s), {item['accepted']:,} events{errors}",
                    f"{rate:,.0f}",
                    f"{limit:,.0f}",
                    f"{ratio(rate, limit):.2f}",
                )
            )
        rows.append(_import_row(run, limit))
    return table(("events", "path", "events/s", "storage limit rows/s", "tally / limit"), rows)


def _import_row(run: dict[str, Any], limit: float) -> tuple[str, ...]:
    found = run["import"]
    if "skipped" in found:
        return (
            _size(run["size"]),
            f"`tally events import`: skipped, {found['skipped']}",
            NOTHING,
            f"{limit:,.0f}",
            NOTHING,
        )
    rate = found["events_per_s"]
    startup = found["startup_seconds"]
    path = f"`tally events import`, {found['events']:,} events, {found['file_mb']:.1f} MB file" + (
        f" (includes {startup:.1f} s of start-up)" if startup is not None else ""
    )
    return (_size(run["size"]), path, f"{rate:,.0f}", f"{limit:,.0f}", f"{ratio(rate, limit):.2f}")


def requests_per_second(runs: list[dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, ...]] = []
    for run in sorted(runs, key=lambda item: item["size"]):
        found = run["rps"]
        bad = found["q1"].get("non_2xx", 0) + found["healthz"].get("non_2xx", 0)
        rows.append(
            (
                _size(run["size"]),
                found["tool"],
                f"{found['healthz']['rps']:,.0f}",
                f"{found['q1']['rps']:,.0f}",
                f"{found['ratio']:.2f}",
                bad,
            )
        )
    header = ("events", "load", "/healthz req/s", "Q1 req/s", "ratio", "non-2xx")
    return table(header, rows)


def memory(runs: list[dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, ...]] = []
    for run in sorted(runs, key=lambda item: item["size"]):
        imported = run["import"].get("peak_rss_mb")
        rows.append(
            (
                _size(run["size"]),
                f"{run['server_peak_rss_mb']:.0f}",
                f"{run['server_peak_process_mb']:.0f}",
                f"{imported:.0f}" if imported is not None else NOTHING,
            )
        )
    header = (
        "events",
        "server peak RSS, MB (sum of its processes)",
        "largest single server process, MB",
        "import peak RSS, MB",
    )
    return table(header, rows)


def databases(runs: list[dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, ...]] = []
    for run in sorted(runs, key=lambda item: (item["backend"], item["size"])):
        meta = run["meta"]
        how = "built by this run" if run["built"] else f"cached, built {meta['built_at'][:10]}"
        rows.append(
            (
                run["backend"],
                _size(meta["events"]),
                _size(meta["voids"]),
                f"{meta['build_seconds']:,.0f} s",
                how,
            )
        )
    return table(("backend", "events stored", "voided", "build time", "database"), rows)


def stages(durations: dict[str, float]) -> list[str]:
    return table(("stage", "seconds"), [(name, f"{took:,.1f}") for name, took in durations.items()])
