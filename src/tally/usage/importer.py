"""Importing usage events from an NDJSON or CSV file: `tally events import`.

The file is read line by line and sent through the same ingestion as
POST /usage/events (validation, idempotency, pricing), one chunk of at most
1,000 events per transaction, so memory stays flat whatever the file size
and a re-run finds everything already stored as duplicates.

- Line numbers are physical lines of the file, from 1 (a CSV header is
  line 1). Blank lines are skipped. A CSV record is one line: no event
  field can hold a newline, so a quoted field may not span lines.
- Without strict, a bad line is rejected with its reason and the rest of
  its chunk is retried until it goes through. When an id repeats, the first
  occurrence (or the stored event) wins: a later line with the same payload
  is a duplicate, with another payload it is rejected.
- With strict, the first bad line stops the import and nothing of its chunk
  is stored; earlier chunks stay committed (run again without --strict, or
  fix the line and re-run: they come back as duplicates).
"""

import csv
import json
from bisect import insort
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.errors import EventConflict, InvalidEvents, NoCreditPricing
from tally.usage.ingest import MAX_BATCH, ingest
from tally.usage.schemas import EventIn

EXTENSIONS = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
# The SPEC's event fields, in the wire schema's order.
CSV_FIELDS = tuple(info.alias or name for name, info in EventIn.model_fields.items())
CSV_REQUIRED = ("id", "companyId", "costKey", "occurredAt")
# Far above any event; keeps one hostile line from filling memory.
MAX_LINE_BYTES = 1024 * 1024
REPORTED = 50
CONFLICT = "id: already used with a different payload"
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
Pending = list[tuple[int, dict[str, Any]]]
Progress = Callable[[int], None]


class ImportFailed(Exception):
    """The file cannot be imported at all (format, CSV header, options)."""


class _BadLine(ValueError):
    """A line that is not an event; its message is the reason shown."""


@dataclass(frozen=True, order=True)
class Rejection:
    line: int
    reason: str


Record = tuple[int, dict[str, Any] | Rejection | None, int]


@dataclass
class ImportSummary:
    """Counts of an import; `rejections` keeps the first REPORTED by line."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    stopped: bool = False

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        insort(self.rejections, rejection)
        del self.rejections[REPORTED:]


def resolve_format(path: Path, fmt: str | None) -> str:
    """The given format, else the one the file extension names."""
    resolved = fmt or EXTENSIONS.get(path.suffix.lower())
    if resolved not in ("ndjson", "csv"):
        raise ImportFailed(f"cannot tell the format of {path.name}; give --format ndjson|csv")
    return resolved


def _lines(handle: BinaryIO) -> Iterator[tuple[int, str | _BadLine, int]]:
    """(line number, text or why it is unreadable, bytes read so far)."""
    number = done = 0
    while line := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        done += len(line)
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(MAX_LINE_BYTES)
                done += len(line)
            yield number, _BadLine(f"longer than {MAX_LINE_BYTES} bytes"), done
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield number, _BadLine("not valid UTF-8"), done
            continue
        yield number, text.removeprefix("\ufeff") if number == 1 else text, done


def _no_constants(name: str) -> Any:
    raise _BadLine(f"invalid JSON: {name} is not valid JSON")


def _json_error(text: str, exc: json.JSONDecodeError) -> _BadLine:
    """The reason, with the column (characters from 1) on the line itself."""
    what = exc.msg.removesuffix(" at")  # "Invalid control character at"
    if exc.pos >= len(text):
        return _BadLine(f"invalid JSON: the line ends early ({what}) at column {exc.pos + 1}")
    return _BadLine(f"invalid JSON: {what} at column {exc.pos + 1}")


def _parse_ndjson(text: str) -> dict[str, Any]:
    # Without its line break, a truncated line is reported where it stops, not
    # at "line 2 column 1" of the text json sees.
    text = text.rstrip("\r\n")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc) from exc
    except _BadLine:
        raise
    except RecursionError as exc:
        raise _BadLine("invalid JSON: nested too deeply") from exc
    except ValueError as exc:  # Python refuses integers of more than 4,300 digits
        raise _BadLine("invalid JSON: a number with too many digits") from exc
    if not isinstance(value, dict):
        raise _BadLine("not a JSON object")
    return value


def _cell(name: str, cell: str) -> Any:
    if name == "minutes":
        try:
            return Decimal(cell)
        except InvalidOperation as exc:
            raise _BadLine(f"minutes: {cell!r} is not a number") from exc
    if name == "isTest":
        if cell.lower() not in _BOOLEANS:
            raise _BadLine(f"isTest: {cell!r} is not true, false, 1 or 0")
        return _BOOLEANS[cell.lower()]
    return cell


def _check_header(cells: list[str]) -> list[str]:
    unknown = sorted(set(cells) - set(CSV_FIELDS))
    missing = [name for name in CSV_REQUIRED if name not in cells]
    if unknown or missing or len(set(cells)) != len(cells):
        raise ImportFailed(
            f"bad CSV header (unknown: {unknown}, missing: {missing}, repeated columns?); "
            f"columns are {', '.join(CSV_FIELDS)}"
        )
    return cells


class _CsvParser:
    """Rows after the header, as event objects; empty cells are absent fields."""

    def __init__(self) -> None:
        self.header: list[str] | None = None

    def __call__(self, text: str) -> dict[str, Any] | None:
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            raise _BadLine(f"invalid CSV: {exc}") from exc
        if self.header is None:
            self.header = _check_header(cells)
            return None
        if len(cells) != len(self.header):
            raise _BadLine(f"expected {len(self.header)} cells, found {len(cells)}")
        return {
            name: _cell(name, cell) for name, cell in zip(self.header, cells, strict=True) if cell
        }


def _records(handle: BinaryIO, fmt: str) -> Iterator[Record]:
    """(line, event or rejection, bytes read) per line; None for skipped lines."""
    parse: Callable[[str], dict[str, Any] | None] = (
        _parse_ndjson if fmt == "ndjson" else _CsvParser()
    )
    for number, text, done in _lines(handle):
        if isinstance(text, _BadLine):
            yield number, Rejection(number, str(text)), done
        elif not text.strip():
            yield number, None, done
        else:
            try:
                yield number, parse(text), done
            except _BadLine as exc:
                yield number, Rejection(number, str(exc)), done


class _DryRun(Exception):
    """Raised inside a transaction to roll it back after a trial."""


def _rejections(pending: Pending, exc: InvalidEvents | NoCreditPricing) -> list[Rejection]:
    """The lines that ingestion's errors name by batch index, with their reasons."""
    reasons: dict[int, list[str]] = {}
    for error in (exc.details or {}).get("errors", []):
        line = pending[error["index"]][0]
        reasons.setdefault(line, []).append(f"{error['field']}: {error['message']}")
    found = [Rejection(line, "; ".join(texts)) for line, texts in sorted(reasons.items())]
    return found or [Rejection(line, exc.message) for line, _ in pending]


@dataclass
class _Importer:
    """Sends chunks through ingestion, dropping (or stopping at) bad lines."""

    database: Database
    strict: bool
    summary: ImportSummary = field(default_factory=ImportSummary)

    def _store(self, session: Any, pending: Pending) -> tuple[int, int]:
        result = ingest(session, {"events": [event for _, event in pending]}, utcnow())
        return result.accepted, result.duplicates

    def attempt(self, pending: Pending, *, dry: bool = False) -> list[Rejection]:
        """Store the lines in one transaction, or return the lines that prevent it."""
        try:
            with self.database.transaction(write=True) as session:
                accepted, duplicates = self._store(session, pending)
                if dry:
                    raise _DryRun
        except _DryRun:
            return []
        except (InvalidEvents, NoCreditPricing) as exc:
            return _rejections(pending, exc)
        except EventConflict as exc:
            return self._conflicts(pending, set((exc.details or {}).get("ids", [])))
        self.summary.accepted += accepted
        self.summary.duplicates += duplicates
        return []

    def _conflicts(self, pending: Pending, ids: set[str]) -> list[Rejection]:
        """Which lines of these ids fail: replay them one by one, in a trial."""
        suspects = [item for item in pending if item[1].get("id") in ids]
        bad: list[Rejection] = []
        with suppress(_DryRun), self.database.transaction(write=True) as session:
            for item in suspects:
                try:
                    self._store(session, [item])
                except EventConflict:
                    bad.append(Rejection(item[0], CONFLICT))
                except (InvalidEvents, NoCreditPricing) as exc:
                    bad += _rejections([item], exc)
            raise _DryRun
        return bad or [Rejection(line, CONFLICT) for line, _ in suspects or pending]

    def flush(self, pending: Pending) -> bool:
        """Store a chunk less its bad lines; False when strict mode stops here."""
        while pending:
            bad = self.attempt(pending)
            if not bad:
                break
            if self.strict:
                return self.stop(min(bad))
            for rejection in bad:
                self.summary.reject(rejection)
            lines = {rejection.line for rejection in bad}
            pending = [item for item in pending if item[0] not in lines]
        return True

    def stop(self, rejection: Rejection) -> bool:
        self.summary.reject(rejection)
        self.summary.stopped = True
        return False

    def stop_before(self, pending: Pending, rejection: Rejection) -> None:
        """Strict: stop at an unparsable line, or at an earlier bad line of its chunk."""
        earlier = self.attempt(pending, dry=True) if pending else []
        self.stop(min(earlier) if earlier else rejection)

    def run(self, records: Iterator[Record], chunk_size: int, progress: Progress) -> None:
        pending: Pending = []
        for line, record, done in records:
            if record is None:
                continue
            self.summary.events += 1
            if not isinstance(record, Rejection):
                pending.append((line, record))
            elif self.strict:
                self.stop_before(pending, record)
                return
            else:
                self.summary.reject(record)
            if len(pending) >= chunk_size:
                if not self.flush(pending):
                    return
                pending = []
                progress(done)
        self.flush(pending)


def import_events(
    database: Database,
    path: Path | str,
    fmt: str | None = None,
    strict: bool = False,
    chunk_size: int = MAX_BATCH,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import a file of events; on_progress gets the bytes read after each chunk."""
    path = Path(path)
    fmt = resolve_format(path, fmt)
    if not 1 <= chunk_size <= MAX_BATCH:
        raise ImportFailed(f"the chunk size must be 1 to {MAX_BATCH}")
    importer = _Importer(database, strict)
    progress = on_progress or (lambda done: None)
    with path.open("rb") as handle:
        importer.run(_records(handle, fmt), chunk_size, progress)
        progress(handle.tell())
    return importer.summary
