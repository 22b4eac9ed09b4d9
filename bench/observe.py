"""What bounds a run: CPU of each process, PostgreSQL's commits, WAL and lock waits.

`Observer` is started before a load phase and stopped after it:

- CPU seconds (user + system, from /proc through psutil) of each server
  process (a `tally serve` and its workers), of the PostgreSQL backends
  connected to the database under test, and of the whole machine (busy
  share of all cores);
- PostgreSQL: commits and rollbacks of the database (pg_stat_database,
  flushed by the backends at least once a second, so a few per cent off over
  a short run), WAL bytes written (pg_current_wal_lsn, exact but for the
  whole cluster: other databases' writes count too), WAL syncs (pg_stat_wal,
  cluster-wide);
- Redis: script calls (EVALSHA: one round trip each; the rate limiter
  sends nothing else) and every command processed, those run inside the
  scripts included (INFO commandstats, server-wide: bench.scaleout starts a
  private Redis so that only the servers count);
- pg_stat_activity sampled every 100 ms: how many of the database's
  backends were active, and how many of those waited on a lock (heavyweight
  `Lock`: row locks, transaction ids), on an LWLock, or on I/O (`WALSync`,
  `WALWrite`, data files).
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]
import psycopg
import redis

SAMPLE_SECONDS = 0.1

_ACTIVITY = """
SELECT count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock'),
       count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'LWLock'),
       count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'IO'),
       count(*) FILTER (WHERE wait_event IN ('WALSync', 'WALWrite')),
       count(*)
FROM pg_stat_activity
WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""
_COUNTERS = """
SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = %s),
       (SELECT xact_rollback FROM pg_stat_database WHERE datname = %s),
       pg_current_wal_lsn() - '0/0'::pg_lsn,
       (SELECT wal_sync FROM pg_stat_wal),
       (SELECT wal_write FROM pg_stat_wal)
"""
_BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
_ACTIVITY_FIELDS = ("active", "lock", "lwlock", "io", "wal_io", "connections")
_COUNTER_FIELDS = ("commits", "rollbacks", "wal_bytes", "wal_syncs", "wal_writes")


def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def family(pid: int) -> list[int]:
    """A process and its descendants (uvicorn's supervisor and its workers)."""
    try:
        root = psutil.Process(pid)
        return [root.pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    times = psutil.cpu_times()
    total = float(sum(times))
    idle = float(times.idle + getattr(times, "iowait", 0.0))
    return total - idle, total


@dataclass
class Observer:
    conninfo: str  # an admin connection to the PostgreSQL server
    database: str  # the database under test
    servers: Sequence[int]  # pids of the server processes (roots)
    redis_url: str | None = None
    samples: list[tuple[int, ...]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _began: float = 0.0
    _cpu: dict[int, float] = field(default_factory=dict)
    _pg_cpu: dict[int, float] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)
    _counters: tuple[int, ...] = ()
    _redis_commands: tuple[int, int, float] = (0, 0, 0.0)

    _redis_client: "redis.Redis | None" = None

    def _redis(self) -> tuple[int, int, float]:
        """Commands processed (those run inside Lua scripts included), script calls, CPU s."""
        if not self.redis_url:
            return 0, 0, 0.0
        if self._redis_client is None:
            self._redis_client = redis.Redis.from_url(self.redis_url)
        stats: dict[str, Any] = self._redis_client.info("commandstats")  # type: ignore[assignment]
        cpu: dict[str, Any] = self._redis_client.info("cpu")  # type: ignore[assignment]
        total = sum(int(item["calls"]) for item in stats.values())
        scripts = sum(
            int(item["calls"])
            for name, item in stats.items()
            if name in ("cmdstat_evalsha", "cmdstat_eval")
        )
        return total, scripts, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def _server_pids(self) -> list[int]:
        return [pid for root in self.servers for pid in family(root)]

    def _read_counters(self, connection: psycopg.Connection[Any]) -> tuple[int, ...]:
        row = connection.execute(_COUNTERS, (self.database, self.database)).fetchone()
        assert row is not None
        return tuple(int(value or 0) for value in row)

    def _backends(self, connection: psycopg.Connection[Any]) -> list[int]:
        return [int(row[0]) for row in connection.execute(_BACKENDS, (self.database,))]

    def _sample(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            while not self._stop.wait(SAMPLE_SECONDS):
                row = connection.execute(_ACTIVITY, (self.database,)).fetchone()
                if row is not None:
                    self.samples.append(tuple(int(value) for value in row))

    def start(self) -> "Observer":
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            self._counters = self._read_counters(connection)
            self._pg_cpu = {pid: _cpu(pid) for pid in self._backends(connection)}
        self._cpu = {pid: _cpu(pid) for pid in self._server_pids()}
        self._redis_commands = self._redis()
        self._machine = _machine_busy()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self._began
        busy, total = _machine_busy()
        commands, scripts, redis_cpu = self._redis()
        # Less two: the INFO calls that took the first count.
        redis_commands = commands - self._redis_commands[0] - 2 if self.redis_url else 0
        redis_scripts = scripts - self._redis_commands[1]
        redis_cpu -= self._redis_commands[2]
        if self._redis_client is not None:
            self._redis_client.close()
        server_cpu = {pid: _cpu(pid) - self._cpu.get(pid, 0.0) for pid in self._server_pids()}
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            counters = self._read_counters(connection)
            pg_cpu = sum(
                _cpu(pid) - self._pg_cpu.get(pid, 0.0) for pid in self._backends(connection)
            )
        deltas = {
            name: after - before
            for name, before, after in zip(_COUNTER_FIELDS, self._counters, counters, strict=True)
        }
        waits = {
            name: sum(sample[index] for sample in self.samples) / max(1, len(self.samples))
            for index, name in enumerate(_ACTIVITY_FIELDS)
        }
        return {
            "seconds": elapsed,
            "connections_peak": max((sample[-1] for sample in self.samples), default=0),
            # Only the processes that did work: a supervisor's own CPU is tiny.
            "server_cpu_share": sorted(
                (cpu / elapsed for cpu in server_cpu.values() if cpu / elapsed >= 0.02),
                reverse=True,
            ),
            "server_cpu_total": sum(server_cpu.values()) / elapsed,
            "pg_backend_cpu": pg_cpu / elapsed,
            "machine_busy": (busy - self._machine[0]) / max(1e-9, total - self._machine[1]),
            "pg": deltas,
            "pg_per_s": {name: value / elapsed for name, value in deltas.items()},
            "activity": waits,
            "redis_commands": redis_commands,
            "redis_scripts": redis_scripts,
            "redis_cpu_seconds": redis_cpu,
            "loadavg": list(psutil.getloadavg()),
        }
