"""The benchmark of issue 3, in one command (see bench/README.md).

.venv/bin/python -m bench.run [--sizes 1000000 10000000] [--backends sqlite postgresql]
    [--windows 200] [--seed 7] [--out docs/performance.md]
"""

import json
import os
import sys
import time
from typing import Any

from bench import config as options
from bench import machine, plot, report, rps, suite
from bench.backends import reachable
from bench.config import Config
from bench.measure import STAGES, say
from tally.core.instants import utcnow


def _notes(config: Config, skipped: list[str], runs: list[dict[str, Any]]) -> list[str]:
    notes = list(skipped)
    if rps.wrk_path(config.python_load) is None:
        why = "--smoke or --python-load" if config.python_load else "wrk is not installed"
        notes.append(f"- Requests/s measured with the Python load loop ({why}), not wrk.")
    stalled = [run for run in runs if run["healthz_keepalive_ms"] > suite.STALL_MS]
    if stalled:
        worst = max(run["healthz_keepalive_ms"] for run in stalled)
        notes.append(
            f"- **Every keep-alive response waited ~{worst:.0f} ms** (median GET /healthz on one "
            "connection; about 1 ms when healthy): the server's accepted sockets lack "
            "TCP_NODELAY, so Nagle's algorithm meets the client's delayed ACK. `tally serve "
            "--workers N` with N > 1 hands uvicorn a listening socket created with proto 0 "
            "(Kludex/uvicorn#3149). HTTP latencies and requests/s of this run include it."
        )
    stale = [f"{run['backend']} {run['size']:,}" for run in runs if run["stale_source"]]
    if stale:
        notes.append(
            f"- The cached databases of {', '.join(stale)} were built by other tally source "
            "than the one measured (rerun with --rebuild if the storage changed)."
        )
    if config.smoke:
        notes.append("- **Smoke run**: tiny counts and short runs; the numbers mean nothing.")
    return notes


def _backends(config: Config) -> tuple[list[str], list[str]]:
    """The backends that can run, and a note for each that cannot."""
    chosen, skipped = [], []
    for backend in config.backends:
        reason = reachable(config.pg_admin_url) if backend == "postgresql" else None
        if reason is None:
            chosen.append(backend)
        else:
            say(f"!! PostgreSQL skipped: {reason}")
            skipped.append(f"- PostgreSQL was not reachable ({reason}): not measured.")
    return chosen, skipped


def _save(config: Config, results: dict[str, Any]) -> None:
    config.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["finished_at"][:19].replace(":", "").replace("-", "")
    path = config.results_dir / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"results: {path}")


def run(config: Config) -> dict[str, Any]:
    began = time.perf_counter()
    chosen, skipped = _backends(config)
    results: dict[str, Any] = {
        "config": {"command": config.command}
        | {key: str(value) for key, value in config.__dict__.items() if key != "command"},
        "machine": machine.describe(config.pg_admin_url),
        "runs": [],
    }
    for backend in chosen:
        for size in config.sizes:
            results["runs"].append(suite.run_size(config, backend, size))
    results["machine"]["loadavg_end"] = [round(value, 2) for value in os.getloadavg()]
    results["notes"] = _notes(config, skipped, results["runs"])
    results["stages"] = dict(STAGES)
    results["seconds"] = time.perf_counter() - began
    results["finished_at"] = utcnow().isoformat()
    return results


def main(argv: list[str] | None = None) -> int:
    config = options.parse(argv)
    results = run(config)
    if not results["runs"]:
        say("nothing was measured")
        return 1
    _save(config, results)
    plot.latency_plot(results, config.plot)
    report.write(results, config.out, config.plot)
    say(f"report: {config.out}\nplot: {config.plot}")
    print(report.render(results, config.out, config.plot).split("## Latency against")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
