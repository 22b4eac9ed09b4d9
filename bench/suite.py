"""Everything measured for one backend and one history size."""

from typing import Any

from bench import backends, importing, ingest, naive, queries, rps, server
from bench.backends import Place
from bench.config import Config
from bench.load import Meta, obtain, source_digest
from bench.measure import ratio, say, stage, summary_ms
from tally.db.engine import Database

# A keep-alive /healthz slower than this is Nagle's algorithm meeting delayed ACKs.
STALL_MS = 20.0


def _query_latencies(config: Config, database: Database, meta: Meta) -> dict[str, Any]:
    """In-process and naive timings per query, on the cached database."""
    found: dict[str, Any] = {}
    for query in queries.QUERIES:
        items = queries.windows(meta, query, config.windows, config.seed)
        caller = queries.principal(meta, query)
        tally = summary_ms(queries.in_process(database, caller, items))
        few = items[: config.naive_windows]
        timings, answers = naive.naive_series(database, caller, few)
        slow = summary_ms(timings)
        differing = naive.disagreements(database, caller, few, answers)
        if differing:
            say(f"   WARNING {query.name}: tally and the naive query differ in {differing} windows")
        found[query.name] = {
            "label": query.label,
            "in_process": tally,
            "naive": slow,
            "naive_over_tally_p50": ratio(slow.get("p50"), tally.get("p50")),
            "disagreements": differing,
        }
        say(f"   {query.name} in-process p50 {tally['p50']:.2f} ms p99 {tally['p99']:.2f} ms")
    return found


def _http_queries(
    config: Config, meta: Meta, port: int, keys: server.Keys, found: dict[str, Any]
) -> None:
    for query in queries.QUERIES:
        items = queries.windows(meta, query, config.windows, config.seed)
        timings = queries.over_http(port, keys.for_query(query.name), items)
        found[query.name]["http"] = summary_ms(timings)


def _http_ingestion(config: Config, meta: Meta, size: int, port: int, key: str) -> list[Any]:
    """One run per client count, each with its own fresh events."""
    runs = []
    for clients in config.clients:
        seed = config.seed + 1000 + clients
        events = ingest.fresh_events(meta, seed, config.ingest_count(size), f"http{clients}-")
        bodies = ingest.encode_batches(events)
        runs.append(ingest.http_ingest(port, key, bodies, clients))
        say(f"   {clients} client(s): {runs[-1]['events_per_s']:,.0f} events/s")
    return runs


def _http_part(
    config: Config, work: Place, meta: Meta, size: int, found: dict[str, Any]
) -> dict[str, Any]:
    """HTTP queries, requests/s and HTTP ingestion against one running server."""
    label = f"{work.backend} {size:,}"
    database = Database(work.url)
    try:
        keys = server.create_keys(database, meta)
    finally:
        database.dispose()
    with server.running(work.url, config.workers) as running:
        probe = server.keepalive_probe(running.port)
        if probe > STALL_MS:
            say(f"   WARNING: keep-alive /healthz takes {probe:.0f} ms (see the report's notes)")
        with stage(f"{label}: HTTP queries"):
            _http_queries(config, meta, running.port, keys, found)
        with stage(f"{label}: requests/s"):
            window = queries.windows(meta, queries.QUERIES[0], 1, config.seed)[0]
            path = queries.usage_path(window)
            load = rps.measure(
                running.port, path, keys.company, config.rps_seconds, config.python_load
            )
        with stage(f"{label}: HTTP ingestion"):
            runs = _http_ingestion(config, meta, size, running.port, keys.platform)
    return {
        "healthz_keepalive_ms": probe,
        "rps": load,
        "http_ingest": runs,
        "server_peak_rss_mb": running.memory.stop(),
        "server_peak_process_mb": running.memory.peak_single_bytes / 1e6,
    }


def _import_part(config: Config, work: Place, meta: Meta, size: int) -> dict[str, Any]:
    label = f"{work.backend} {size:,}"
    events = ingest.fresh_events(meta, config.seed + 2000, config.import_count(size), "imp-")
    result: dict[str, Any] = {}
    with stage(f"{label}: tally events import"):
        reason = importing.missing_reason()
        if reason is None:
            result["import"] = importing.run_import(work.url, events, not config.smoke)
            say(f"   import: {result['import']['summary']}")
        else:
            say(f"   SKIPPED: {reason}")
            result["import"] = {"skipped": reason}
    with stage(f"{label}: storage limit"):
        result["limit"] = ingest.storage_limit(work.url, events)
    return result


def run_size(config: Config, backend: str, size: int) -> dict[str, Any]:
    """Build or reuse the database, then measure everything on it."""
    label = f"{backend} {size:,}"
    with stage(f"{label}: database"):
        place, meta, built = obtain(config, size, backend)
    result: dict[str, Any] = {"backend": backend, "size": size, "built": built}
    result["meta"] = meta.__dict__
    result["stale_source"] = meta.source_digest != source_digest()
    try:
        with stage(f"{label}: in-process and naive queries"):
            database = Database(place.url)
            try:
                result["queries"] = _query_latencies(config, database, meta)
            finally:
                database.dispose()
        with stage(f"{label}: scratch copy"):
            work = backends.scratch_copy(place)
        try:
            result |= _http_part(config, work, meta, size, result["queries"])
            result |= _import_part(config, work, meta, size)
        finally:
            backends.drop(work)
    finally:
        if config.discard:
            backends.drop(place)
            backends.meta_path(config, place).unlink(missing_ok=True)
    return result
