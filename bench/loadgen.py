"""HTTP ingestion load from several client processes, spread over server ports.

Each client is its own process (forked, so the request bodies encoded
beforehand are shared, not copied or re-encoded), with one keep-alive
connection to one server port (client k -> ports[k % len(ports)]). The
clients take the next body from one shared counter, so every body is sent
exactly once and no client idles while batches remain. A 503 is retried
after Retry-After, as a client should.

Two rates are computed: overall (every accepted event over the wall time,
start-up and drain included) and steady (the batches completed while every
client was busy: between the C-th completion and the C-th before last, C
the number of clients), which is what compares runs with different client
counts fairly: the drain, where fewer and fewer clients are left working,
weighs more with more clients and fewer batches each.

The CPU time of the client processes is measured (their own getrusage) and
reported, so a run shows whether the load generator was near a bottleneck.
"""

import json
import multiprocessing
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from typing import Any

from bench.measure import summary_ms
from bench.queries import Client

REQUEST_TIMEOUT = 120.0
RETRY_AFTER = 1.0
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Completion:
    """One batch answered: when (time.monotonic), how many events it stored, how long it took."""

    done_at: float
    accepted: int
    seconds: float


def steady_rate(completions: Sequence[Completion], clients: int) -> float | None:
    """Events/s between the clients-th completion and the clients-th before last.

    None when there are too few batches for such a middle (fewer than
    2 * clients + 2): then only the overall rate means anything.
    """
    ordered = sorted(completions, key=lambda item: item.done_at)
    first, last = clients - 1, len(ordered) - clients - 1
    if clients < 1 or last - first < 2:
        return None
    span = ordered[last].done_at - ordered[first].done_at
    if span <= 0:
        return None
    return sum(item.accepted for item in ordered[first + 1 : last + 1]) / span


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client(
    port: int,
    key: str,
    bodies: Sequence[bytes],
    counter: "Synchronized[int]",
    barrier: Barrier,
    results: "multiprocessing.Queue[dict[str, Any]]",
) -> None:
    client = Client(port, key, timeout=REQUEST_TIMEOUT)
    completions: list[Completion] = []
    errors: list[str] = []
    retries = 0
    try:
        client.connection.connect()
        barrier.wait(START_TIMEOUT)
        cpu_before = _cpu_seconds()
        while True:
            with counter.get_lock():
                index = counter.value
                counter.value += 1
            if index >= len(bodies):
                break
            began = time.monotonic()
            status, answer = client.request("POST", "/usage/events", bodies[index])
            while status == 503:
                retries += 1
                time.sleep(RETRY_AFTER)
                status, answer = client.request("POST", "/usage/events", bodies[index])
            now = time.monotonic()
            if status == 200:
                accepted = int(json.loads(answer)["data"]["accepted"])
                completions.append(Completion(now, accepted, now - began))
            else:
                errors.append(f"{status} {answer[:200]!r}")
        cpu = _cpu_seconds() - cpu_before
    except Exception as exc:  # reported, never a hang of the parent
        errors.append(repr(exc))
        cpu = 0.0
    finally:
        client.close()
    results.put(
        {
            "completions": [(item.done_at, item.accepted, item.seconds) for item in completions],
            "errors": errors,
            "retries": retries,
            "cpu_seconds": cpu,
        }
    )


def run(ports: Sequence[int], key: str, bodies: Sequence[bytes], clients: int) -> dict[str, Any]:
    """POST every body once with `clients` client processes spread over `ports`."""
    context = multiprocessing.get_context("fork")
    counter: Synchronized[int] = context.Value("q", 0)
    barrier = context.Barrier(clients + 1)
    results: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    processes = [
        context.Process(
            target=_client,
            args=(ports[number % len(ports)], key, bodies, counter, barrier, results),
            daemon=True,
        )
        for number in range(clients)
    ]
    for process in processes:
        process.start()
    barrier.wait(START_TIMEOUT)
    began = time.monotonic()
    answers = [results.get(timeout=REQUEST_TIMEOUT * len(bodies)) for _ in processes]
    elapsed = time.monotonic() - began
    for process in processes:
        process.join(timeout=10)
    completions = [Completion(*item) for answer in answers for item in answer["completions"]]
    accepted = sum(item.accepted for item in completions)
    client_cpu = sum(answer["cpu_seconds"] for answer in answers)
    return {
        "clients": clients,
        "batches": len(bodies),
        "accepted": accepted,
        "seconds": elapsed,
        "events_per_s": accepted / elapsed if elapsed else 0.0,
        "steady_events_per_s": steady_rate(completions, clients),
        "latency_ms": summary_ms([item.seconds for item in completions]),
        "errors": [error for answer in answers for error in answer["errors"]][:5],
        "retries_after_503": sum(answer["retries"] for answer in answers),
        "client_cpu_seconds": client_cpu,
        "client_cpu_share": client_cpu / elapsed if elapsed else 0.0,
    }
