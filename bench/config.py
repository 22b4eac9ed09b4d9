"""The benchmark's options: one argparse parser, one frozen value."""

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
BACKENDS = ("sqlite", "postgresql")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...]
    backends: tuple[str, ...]
    windows: int
    naive_windows: int
    seed: int
    out: Path
    data_dir: Path
    results_dir: Path
    workers: int
    clients: tuple[int, ...]
    ingest_events: int | None
    import_events: int | None
    rps_seconds: float
    python_load: bool
    smoke: bool
    rebuild: bool
    bulk: bool
    discard: bool
    tag: str
    pg_admin_url: str
    command: str

    @property
    def plot(self) -> Path:
        return self.out.with_name(self.out.stem + "-latency.png")

    def ingest_count(self, size: int) -> int:
        """Fresh events per HTTP ingestion run: enough for a steady rate."""
        if self.ingest_events is not None:
            return self.ingest_events
        return max(10_000, min(size // 20, 200_000))

    def import_count(self, size: int) -> int:
        if self.import_events is not None:
            return self.import_events
        return max(10_000, min(size // 10, 500_000))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="The benchmark of issue 3; see bench/README.md."
    )
    add = parser.add_argument
    add(
        "--sizes",
        type=int,
        nargs="+",
        default=[1_000_000, 10_000_000],
        help="events in each history",
    )
    add("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    add("--windows", type=int, default=200, help="random windows per query")
    add("--naive-windows", type=int, default=20, help="windows for the naive GROUP BY")
    add("--seed", type=int, default=7)
    add("--out", type=Path, default=REPO / "docs" / "performance.md")
    add("--data-dir", type=Path, default=BENCH_DIR / "data", help="cached databases")
    add("--results-dir", type=Path, default=BENCH_DIR / "results")
    add("--workers", type=int, default=1, help="tally serve --workers")
    add("--clients", type=int, nargs="+", default=[1, 2, 4], help="concurrent ingest clients")
    add("--ingest-events", type=int, default=None, help="fresh events per ingest run")
    add("--import-events", type=int, default=None, help="events in the import file")
    add("--rps-seconds", type=float, default=10.0)
    add("--python-load", action="store_true", help="never use wrk")
    add("--smoke", action="store_true", help="tiny counts, short runs, no wrk")
    add("--rebuild", action="store_true", help="ignore cached databases")
    add(
        "--api-build",
        action="store_true",
        help="build histories through full ingestion (slow) instead of bulk + verify --repair",
    )
    add("--discard", action="store_true", help="delete the databases built by this run")
    add("--tag", default="", help="suffix for PostgreSQL database names")
    add("--pg-admin-url", default=PG_ADMIN_URL)
    return parser


def _command(argv: list[str]) -> str:
    return shlex.join([".venv/bin/python", "-m", "bench.run", *argv])


def parse(argv: list[str] | None = None) -> Config:
    args_list = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(args_list)
    smoke = bool(args.smoke)
    return Config(
        sizes=tuple(sorted(set(args.sizes))),
        backends=tuple(dict.fromkeys(args.backends)),
        windows=args.windows,
        naive_windows=min(args.naive_windows, args.windows),
        seed=args.seed,
        out=args.out.resolve(),
        data_dir=args.data_dir.resolve(),
        results_dir=args.results_dir.resolve(),
        workers=args.workers,
        clients=tuple(args.clients),
        ingest_events=args.ingest_events or (2_000 if smoke else None),
        import_events=args.import_events or (2_000 if smoke else None),
        rps_seconds=1.0 if smoke else args.rps_seconds,
        python_load=args.python_load or smoke,
        smoke=smoke,
        rebuild=args.rebuild,
        bulk=not args.api_build,
        discard=args.discard,
        tag=args.tag,
        pg_admin_url=args.pg_admin_url,
        command=_command(args_list),
    )
