"""`tally events import` of an NDJSON file, as a real subprocess of the CLI.

Timed from spawn to exit (interpreter start and the migration check
included; the run on an empty file says how much that is), with the peak
resident memory of the subprocess sampled by psutil.
"""

import importlib.util
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.server import MemorySampler, tally_command

TIMEOUT = 4 * 3600.0
SUMMARY = re.compile(r"accepted (\d+), duplicates (\d+), rejected (\d+)")


def missing_reason() -> str | None:
    """Why the import cannot run here, or None when `tally events import` exists."""
    if importlib.util.find_spec("tally.usage.importer") is None:
        return "tally.usage.importer does not exist yet"
    from tally.usage import importer

    if not hasattr(importer, "import_events"):
        return "tally.usage.importer has no import_events"
    from typer.main import get_command

    from tally.cli import app

    events = getattr(get_command(app), "commands", {}).get("events")
    if events is None or "import" not in getattr(events, "commands", {}):
        return "the CLI has no `tally events import` command"
    return None


def write_ndjson(events: list[dict[str, Any]], path: Path) -> None:
    with path.open("w") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")


def _run(url: str, path: Path) -> tuple[float, float, str, int]:
    """Seconds, peak MB, the summary line printed, exit code."""
    command = [*tally_command(), "events", "import", str(path), "--database-url", url]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    memory = MemorySampler(process.pid, interval=0.05).start()
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=30)
    finally:
        peak = memory.stop()
    elapsed = time.perf_counter() - began
    text = (out + err).decode(errors="replace")
    found = SUMMARY.search(text)
    return elapsed, peak, found.group(0) if found else text[-500:], process.returncode


def run_import(url: str, events: list[dict[str, Any]], probe_startup: bool) -> dict[str, Any]:
    """Import the events from a file; events/s and the subprocess's peak memory."""
    with tempfile.TemporaryDirectory(prefix="tally-bench-import-") as folder:
        startup = None
        if probe_startup:
            empty = Path(folder) / "empty.ndjson"
            empty.touch()
            startup = _run(url, empty)[0]
        path = Path(folder) / "events.ndjson"
        write_ndjson(events, path)
        size_mb = path.stat().st_size / 1e6
        seconds, peak, summary, code = _run(url, path)
    found = SUMMARY.search(summary)
    accepted = int(found.group(1)) if found else 0
    return {
        "events": len(events),
        "file_mb": size_mb,
        "accepted": accepted,
        "summary": summary.strip(),
        "exit_code": code,
        "seconds": seconds,
        "startup_seconds": startup,
        "events_per_s": accepted / seconds if seconds else 0.0,
        "peak_rss_mb": peak,
    }
