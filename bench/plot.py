"""The latency plot: p50 and p99 per query against history size, per backend."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from bench.queries import QUERIES

COLOURS = {"Q1": "tab:blue", "Q2": "tab:orange", "Q3": "tab:green", "Q4": "tab:red"}
WAYS = (("in_process", "in-process"), ("http", "over HTTP"))


def _panel(axis: Any, runs: list[dict[str, Any]], way: str, title: str) -> None:
    ordered = sorted(runs, key=lambda run: run["size"])
    sizes = [run["size"] for run in ordered]
    for query in QUERIES:
        stats = [run["queries"][query.name].get(way, {}) for run in ordered]
        colour = COLOURS[query.name]
        axis.plot(
            sizes, [s.get("p50") for s in stats], "o-", color=colour, label=f"{query.name} p50"
        )
        axis.plot(
            sizes, [s.get("p99") for s in stats], "s--", color=colour, label=f"{query.name} p99"
        )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("events in the history")
    axis.set_ylabel("latency (ms)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)


def latency_plot(results: dict[str, Any], path: Path) -> None:
    """One column per backend, in-process on top and HTTP below."""
    backends = list(dict.fromkeys(run["backend"] for run in results["runs"]))
    figure, axes = plt.subplots(
        len(WAYS), len(backends), figsize=(6 * len(backends), 8), squeeze=False
    )
    for column, backend in enumerate(backends):
        runs = [run for run in results["runs"] if run["backend"] == backend]
        for row, (way, label) in enumerate(WAYS):
            _panel(axes[row][column], runs, way, f"{backend}, {label}")
    axes[0][0].legend(fontsize="small", ncol=2)
    figure.suptitle("GET /billing/usage latency against history size")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
